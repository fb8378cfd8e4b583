import { env } from "./support/env.ts";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { userAuthority } from "../src/authority/client.ts";
import type { UserAuthority } from "../src/authority/user-authority.ts";
import { withDb } from "../src/db/client.ts";
import { spendLedger } from "../src/db/schema.ts";
import { ChatClient, eventually, setDatabase, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();
afterEach(async () => {
  await setDatabase("up");
});

const ledger = (userId: string) => withDb(env, (db) => db.select().from(spendLedger).where(eq(spendLedger.userId, userId)));
const held = (userId: string) =>
  runInDurableObject(env.UserAuthority.get(env.UserAuthority.idFromName(userId)), async (_a: UserAuthority, s) => ({
    entries: (await s.storage.list({ prefix: "ledger:" })).size,
    retry: await s.storage.get<number>("ledger-retry"),
    alarm: await s.storage.getAlarm(),
  }));

describe("the spend ledger through a Postgres outage", () => {
  it("a turn's spend counts at once; its entries wait at the authority, retried on its alarm, and land in the ledger once Postgres is back", async () => {
    const t = await newThread();
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    await setDatabase("down");
    expect((await client.response(client.sendChat("spend while Postgres is down").requestId)).error).toBeUndefined();
    const authority = userAuthority(env, t.userId);
    // Settled as the turn ends, its done frame perhaps first.
    const spent = await eventually(
      async () => {
        const b = await authority.budgets();
        return "spent" in b ? b.spent.lifetime : 0;
      },
      (n) => n > 0,
    );
    expect(await authority.flushLedger()).toMatchObject({ ok: false, code: "database_unavailable" });
    const waiting = await held(t.userId);
    expect(waiting.entries).toBeGreaterThanOrEqual(1);
    expect(waiting.retry).toBeGreaterThanOrEqual(1);
    expect(waiting.alarm).not.toBeNull();

    await setDatabase("up");
    // The alarm's try (its backoff may already have run it: then the rows are there).
    await runDurableObjectAlarm(env.UserAuthority.get(env.UserAuthority.idFromName(t.userId)));
    const rows = await eventually(
      () => ledger(t.userId),
      (r) => r.length === waiting.entries,
    );
    expect(rows.reduce((n, r) => n + r.inputTokens + r.outputTokens, 0)).toBe(spent);
    expect(await held(t.userId)).toMatchObject({ entries: 0, retry: undefined });
    client.close();
  });
});
