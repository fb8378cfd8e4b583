import { sql } from "drizzle-orm";
import { Hono } from "hono";
import { withDb } from "../db/client";
import { toAppError } from "../errors";
import type { AppEnv } from "./http";

export const health = new Hono<AppEnv>().get("/", async (c) => {
  const started = Date.now();
  try {
    await withDb(c.env, (db) => db.execute(sql`select 1`));
    return c.json({ status: "ok", database: { status: "ok", latencyMs: Date.now() - started } });
  } catch (err) {
    const error = toAppError(err);
    const code = error.code === "internal_error" ? "database_unavailable" : error.code;
    return c.json(
      { status: "unavailable", database: { status: "unreachable" }, error: { code, message: "database unreachable" } },
      503,
    );
  }
});
