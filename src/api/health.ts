import { sql } from "drizzle-orm";
import { Hono } from "hono";
import { getConfig } from "../config.ts";
import { withDb } from "../db/client.ts";
import { outboxMonitor, type BacklogSummary } from "../observability/outbox-monitor.ts";
import type { AppEnv } from "./http.ts";

/** 200 when Postgres answers, 503 when it cannot be reached; either way, the messages still waiting in agents' outboxes. */
export const health = new Hono<AppEnv>().get("/", async (c) => {
  try {
    getConfig(c.env);
  } catch (err) {
    // Every API route would fail the same way: say so here, where operators look.
    return c.json({ status: "unavailable", config: { status: "invalid" }, error: { code: "invalid_configuration", message: (err as Error).message } }, 503);
  }
  const started = Date.now();
  const outbox: BacklogSummary | null = await outboxMonitor(c.env)
    .summary()
    .catch(() => null);
  try {
    await withDb(c.env, (db) => db.execute(sql`select 1`));
    return c.json({ status: "ok", database: { status: "ok", latencyMs: Date.now() - started }, outbox });
  } catch {
    return c.json({ status: "unavailable", database: { status: "unreachable" }, outbox, error: { code: "database_unavailable", message: "database unreachable" } }, 503);
  }
});
