import { env } from "./support/env.ts";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { reservationFor } from "../src/agent/gate.ts";
import { SYSTEM_PROMPT } from "../src/agent/turn.ts";
import { userAuthority } from "../src/authority/client.ts";
import type { UserAuthority } from "../src/authority/user-authority.ts";
import { withDb } from "../src/db/client.ts";
import { spendLedger } from "../src/db/schema.ts";
import { eq } from "drizzle-orm";
import { ChatClient, eventually, fetchApp, httpTurn, postJson, sendJson, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();
type Usage = {
  usage: { totalTokens: number; turns: number };
  remaining: number | null;
  budgets: Record<"lifetime" | "daily" | "monthly", { limit: number | null; used: number; remaining: number | null; resetsAt: string | null }>;
};
const usage = async (key: string) => (await (await fetchApp("/api/v1/users/me/usage", {}, key)).json()) as Usage;
const ledger = (userId: string) => withDb(env, (db) => db.select().from(spendLedger).where(eq(spendLedger.userId, userId)));
/** The ledger in Postgres once the user's authority has written what it holds (it batches for LEDGER_DELAY_MS). */
const flushedLedger = async (userId: string) => (await userAuthority(env, userId).flushLedger(), ledger(userId));
const setFlag = (userId: string, flag: string, value: unknown) => sendJson("PUT", `/api/v1/admin/users/${userId}/flags/${flag}`, { value });

describe("spend: an append-only ledger and budgets that are real caps", () => {
  it("parallel turns cannot pass a budget by more than one turn's reservation", async () => {
    const budget = 100;
    const { userId, apiKey, threadId } = await newThread(undefined, { tokenBudget: budget });
    // A small reply cap makes a turn's reservation small (its context plus this); each turn here spends about 22 tokens,
    // so without reservations all 15 would start at once and spend over 300.
    expect((await setFlag(userId, "turn_max_output_tokens", 40)).status).toBe(200);
    expect((await setFlag(userId, "turn_rate_limit", 100)).status).toBe(200);
    const threads = [
      threadId,
      ...(await Promise.all([0, 1, 2].map(async () => ((await (await postJson("/api/v1/threads", {}, apiKey)).json()) as { thread: { id: string } }).thread.id))),
    ];
    const texts = Array.from({ length: 15 }, (_, i) => `parallel turn ${String(i).padStart(2, "0")} with some words to spend`);
    const results = await Promise.all(texts.map((text, i) => httpTurn(threads[i % threads.length]!, text, apiKey)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s === 402).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 402)).toBe(true);
    // Every admitted turn settled: nothing stays reserved.
    const reserved = await runInDurableObject(env.UserAuthority.get(env.UserAuthority.idFromName(userId)), async (_a: UserAuthority, s) => s.storage.list({ prefix: "res:" }));
    expect(reserved.size).toBe(0);
    const reservation = reservationFor([{ id: "u", role: "user", parts: [{ type: "text", text: texts[0]! }] }], 40, SYSTEM_PROMPT.length);
    const spent = (await usage(apiKey)).usage.totalTokens;
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(budget + reservation);
  });

  it("deleting a thread, clearing one or regenerating a reply gives no tokens back; every model call is in the ledger", async () => {
    // Both titled by their owner: no title is written (a call of its own, in test/agent.titles.test.ts).
    const { userId, apiKey, threadId } = await newThread("first");
    const other = ((await (await postJson("/api/v1/threads", { title: "other" }, apiKey)).json()) as { thread: { id: string } }).thread.id;
    expect((await httpTurn(threadId, "first turn", apiKey)).status).toBe(200);
    expect((await httpTurn(other, "what time is it?", apiKey)).status).toBe(200); // a tool call: two model calls
    const client = await ChatClient.connect(threadId, apiKey);
    client.send({ type: "cf_agent_use_chat_request", id: "regen", init: { method: "POST", body: JSON.stringify({ messages: [], trigger: "regenerate-message" }) } });
    expect((await client.response("regen")).error).toBeUndefined();
    client.close();
    const entries = await eventually(
      () => flushedLedger(userId),
      (e) => e.length >= 4,
    );
    expect(entries.map((e) => e.kind).sort()).toEqual(["regenerate", "turn", "turn", "turn"]);
    expect(entries.filter((e) => e.threadId === other)).toHaveLength(2);
    const before = (await usage(apiKey)).usage;
    expect(before.turns).toBe(3);
    expect((await fetchApp(`/api/v1/threads/${threadId}/messages`, { method: "DELETE" }, apiKey)).status).toBe(204);
    expect((await fetchApp(`/api/v1/threads/${other}`, { method: "DELETE" }, apiKey)).status).toBe(204);
    expect((await usage(apiKey)).usage).toEqual(before);
    expect(await ledger(userId)).toHaveLength(entries.length);
  });

  it("budgets per day and month, set by the admin: a 402 says which is spent and when it resets", async () => {
    const { userId, apiKey, threadId } = await newThread();
    const patched = await sendJson("PATCH", `/api/v1/users/${userId}`, { dailyTokenBudget: 5, monthlyTokenBudget: 100_000 });
    expect(await patched.json()).toMatchObject({ user: { id: userId, dailyTokenBudget: 5, monthlyTokenBudget: 100_000, tokenBudget: null } });
    expect((await sendJson("PATCH", `/api/v1/users/${userId}`, { dailyTokenBudget: 5 }, apiKey)).status).toBe(403);
    expect((await sendJson("PATCH", `/api/v1/users/${userId}`, { dailyTokenBudget: -1 })).status).toBe(422);
    expect((await sendJson("PATCH", `/api/v1/users/${crypto.randomUUID()}`, { dailyTokenBudget: 5 })).status).toBe(404);
    expect((await httpTurn(threadId, "spend the day", apiKey)).status).toBe(200);
    const refused = await httpTurn(threadId, "and more", apiKey);
    expect(refused.status).toBe(402);
    const tomorrow = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1)).toISOString();
    expect(await refused.json()).toEqual({
      error: { code: "token_budget_exhausted", message: expect.stringContaining("daily"), budget: "daily", limit: 5, used: expect.any(Number), resetsAt: tomorrow },
    });
    // Over WebSocket: the same refusal as a chat error frame with the same fields.
    const client = await ChatClient.connect(threadId, apiKey);
    const { requestId, message } = client.sendChat("over the socket");
    const frame = await client.waitFor((f) => f.id === requestId && f.error === true);
    expect(frame).toMatchObject({ code: "token_budget_exhausted", budget: "daily", resetsAt: tomorrow, messageIds: [message.id], outcome: "error", done: true });
    client.close();
    const u = await usage(apiKey);
    expect(u.budgets.daily).toMatchObject({ limit: 5, remaining: 0, resetsAt: tomorrow });
    expect(u.budgets.monthly).toMatchObject({ limit: 100_000, remaining: 100_000 - u.budgets.monthly.used });
    expect(u.budgets.lifetime).toMatchObject({ limit: null, remaining: null, resetsAt: null });
    // Lifting the budget takes effect on the next turn.
    await sendJson("PATCH", `/api/v1/users/${userId}`, { dailyTokenBudget: null });
    expect((await httpTurn(threadId, "lifted", apiKey)).status).toBe(200);
  });

  it("the user's authority keeps keys, spend and the rate window through an eviction", async () => {
    const { userId, apiKey, threadId } = await newThread(undefined, { tokenBudget: 10 });
    expect((await httpTurn(threadId, "spend it all", apiKey)).status).toBe(200);
    const stub = env.UserAuthority.get(env.UserAuthority.idFromName(userId));
    const before = await runInDurableObject(stub, async (_a: UserAuthority, s) => ({ turns: ((await s.storage.get<number[]>("turns")) ?? []).length }));
    await evictDurableObject(stub);
    expect((await fetchApp("/api/v1/users/me", {}, apiKey)).status).toBe(200);
    expect((await httpTurn(threadId, "still spent", apiKey)).status).toBe(402);
    const after = await runInDurableObject(stub, async (_a: UserAuthority, s) => ({ turns: ((await s.storage.get<number[]>("turns")) ?? []).length }));
    expect(after.turns).toBe(before.turns);
    expect((await userAuthority(env, userId).budgets()) as { remaining: { lifetime: number } }).toMatchObject({ remaining: { lifetime: 0 } });
  });

  it("a turn that never settles (its agent evicted mid-turn) holds its reservation for 15 minutes, then no longer", async () => {
    const { userId, apiKey, threadId } = await newThread(undefined, { tokenBudget: 1000 });
    const reserve = (at: number) =>
      runInDurableObject(env.UserAuthority.get(env.UserAuthority.idFromName(userId)), async (_a: UserAuthority, s) => {
        await s.storage.delete([...(await s.storage.list({ prefix: "res:" })).keys()]);
        await s.storage.put("res:unsettled", { tokens: 1000, at, threadId });
      });
    await reserve(Date.now() - 14 * 60_000);
    expect((await httpTurn(threadId, "held back", apiKey)).status).toBe(402);
    await reserve(Date.now() - 16 * 60_000);
    expect((await httpTurn(threadId, "free again", apiKey)).status).toBe(200);
  });
});
