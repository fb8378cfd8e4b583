import { env } from "./support/env.ts";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { hashApiKey } from "../src/auth/keys.ts";
import { userAuthority } from "../src/authority/client.ts";
import { LEASE_GRACE_MS, type Lease } from "../src/authority/lease.ts";
import type { UserAuthority } from "../src/authority/user-authority.ts";
import { ChatClient, eventually, fetchApp, postJson, sendJson, threadsForEachTest, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();
const anotherThread = async (apiKey: string) => ((await (await postJson("/api/v1/threads", {}, apiKey)).json()) as { thread: { id: string } }).thread.id;
const authorityState = (userId: string) =>
  runInDurableObject(env.UserAuthority.get(env.UserAuthority.idFromName(userId)), async (_a: UserAuthority, s) => ({
    leases: [...(await s.storage.list<Lease & { threadId: string }>({ prefix: "lease:" })).values()],
    reserved: (await s.storage.list({ prefix: "res:" })).size,
    turns: ((await s.storage.get<number[]>("turns")) ?? []).length,
  }));

/**
 * Threads of one user, as their agents drive the authority, in the order least kind to it: first one turn
 * on each of `warm` threads in turn (they take leases), then rounds on all of them at once, in which every
 * thread holding a lease starts a turn on it (no call), every other asks, and the leased turns' reports
 * arrive after the asks. Every turn admitted spends all it reserved. Returns what was admitted and spent.
 */
async function drive(userId: string, keyHash: string, threads: string[], o: { warm: number; reserve: number; rate: { limit: number; windowSeconds: number }; rounds: number }) {
  const a = userAuthority(env, userId);
  const leases = new Map<string, Lease | undefined>();
  let admitted = 0;
  let leased = 0;
  const refusals = new Set<string>();
  const schedule = [...threads.slice(0, o.warm).map((t) => [t]), ...Array.from({ length: o.rounds }, () => threads)];
  for (const round of schedule) {
    const onLease = round.filter((t) => leases.get(t)).map((threadId) => ({ threadId, turnId: crypto.randomUUID(), lease: leases.get(threadId)! }));
    const asking = round.filter((t) => !leases.get(t)).map((threadId) => ({ threadId, turnId: crypto.randomUUID() }));
    const asked = await Promise.all(
      asking.map(async ({ threadId, turnId }) => {
        const r = await a.admitTurn({ turnId, threadId, keyHash, rate: o.rate, reserve: o.reserve, lease: o.reserve });
        if (!r.ok) return void refusals.add(r.code);
        leases.set(threadId, r.lease);
        return { threadId, turnId };
      }),
    );
    for (const { threadId, turnId, lease } of onLease) {
      const reported = await a.leaseUsed({ threadId, leaseId: lease.leaseId, turnId, reserve: o.reserve, at: Date.now(), windowSeconds: o.rate.windowSeconds, lease: o.reserve });
      leases.set(threadId, reported.lease);
    }
    const started = [...onLease, ...asked.filter((t) => t !== undefined)];
    leased += onLease.length;
    admitted += started.length;
    for (const { threadId, turnId } of started) {
      const call = { entryId: `${turnId}:0`, kind: "turn", model: "fake", inputTokens: o.reserve, outputTokens: 0, at: Date.now() };
      await a.recordSpend({ turnId, threadId, calls: [call], final: true });
    }
    if (!started.length && round.length > 1) break;
  }
  return { admitted, leased, refusals: [...refusals], spent: admitted * o.reserve };
}

describe("admission leases at the user's authority", () => {
  it("a lease is a reservation: turns on leases and turns that ask pass a budget by at most one reservation", async () => {
    const budget = 1000;
    const reserve = 100;
    const { userId, apiKey, threadId } = await newThread(undefined, { tokenBudget: budget });
    const threads = [threadId, ...(await Promise.all(Array.from({ length: 9 }, () => anotherThread(apiKey))))];
    const r = await drive(userId, await hashApiKey(apiKey), threads, { warm: 4, reserve, rate: { limit: 1000, windowSeconds: 60 }, rounds: 10 });
    expect(r.leased).toBeGreaterThan(0);
    expect(r.refusals).toEqual(["token_budget_exhausted"]);
    expect(r.spent).toBeGreaterThanOrEqual(budget);
    expect(r.spent).toBeLessThanOrEqual(budget + reserve);
    const state = await authorityState(userId);
    expect(state.reserved).toBe(0);
    await userAuthority(env, userId).flushLedger();
  });

  it("leases hold slots of the rate window: turns on leases and turns that ask never pass the limit, and every slot is used", async () => {
    const limit = 9;
    const { userId, apiKey, threadId } = await newThread();
    const threads = [threadId, ...(await Promise.all(Array.from({ length: 7 }, () => anotherThread(apiKey))))];
    const r = await drive(userId, await hashApiKey(apiKey), threads, { warm: 4, reserve: 10, rate: { limit, windowSeconds: 600 }, rounds: 10 });
    expect(r.leased).toBeGreaterThan(0);
    expect(r.refusals).toEqual(["rate_limited"]);
    expect(r.admitted).toBe(limit);
    expect((await authorityState(userId)).turns).toBe(limit);
    await userAuthority(env, userId).flushLedger();
  });
});

describe("admission leases on a thread", () => {
  let lines: Record<string, unknown>[] = [];
  beforeEach(() => {
    lines = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      try {
        lines.push(JSON.parse(args.map(String).join(" ")));
      } catch {
        /* not one of ours */
      }
    });
  });
  afterEach(() => vi.restoreAllMocks());
  const admission = async (client: ChatClient, text: string) => {
    const { requestId } = client.sendChat(text);
    expect((await client.response(requestId)).error).toBeUndefined();
    const line = await eventually(
      async () => lines.find((l) => l.event === "turn" && l.requestId === requestId),
      (l) => l !== undefined,
    );
    return line!.admission;
  };

  it("a fresh socket's first turn and a warm thread's turns start on leases; budgets changed, the next one asks; eviction and rotation", async () => {
    const { userId, apiKey, threadId } = await newThread("leases");
    expect((await sendJson("PUT", `/api/v1/admin/users/${userId}/flags/turn_rate_limit`, { value: 100 })).status).toBe(200);
    const agent = () => threadAgent(threadId);
    const settled = () =>
      eventually(
        () => authorityState(userId),
        (s) => s.reserved === 0,
      );
    let client = await ChatClient.connect(threadId, apiKey);
    // As the client connected, the agent took a lease for its first turn.
    await agent().warmed();
    const [granted] = (await authorityState(userId)).leases;
    expect(granted).toMatchObject({ threadId, keyHash: await hashApiKey(apiKey) });
    expect(await admission(client, "first")).toBe("lease");
    // The lease became the turn's reservation (settled) and its slot in the window; the next lease came back with its report.
    const afterFirst = await settled();
    expect(afterFirst).toMatchObject({ turns: 1, leases: [{ threadId }] });
    expect(afterFirst.leases[0]!.leaseId).not.toBe(granted!.leaseId);
    // The authority keeps its leases through an eviction: the lease's report finds it, and brings the next.
    await evictDurableObject(env.UserAuthority.get(env.UserAuthority.idFromName(userId)));
    expect(await admission(client, "second")).toBe("lease");
    const afterSecond = await settled();
    expect(afterSecond).toMatchObject({ turns: 2, leases: [{ threadId }] });
    expect(afterSecond.leases[0]!.leaseId).not.toBe(afterFirst.leases[0]!.leaseId);
    // The admin changes the budgets: leases granted under the old ones are dropped, by the agent and then here.
    expect((await sendJson("PATCH", `/api/v1/users/${userId}`, { dailyTokenBudget: 1_000_000 })).status).toBe(200);
    expect((await authorityState(userId)).leases).toEqual([]);
    expect(await admission(client, "after the budget changed")).toBe("authority");
    expect(await admission(client, "leased again")).toBe("lease");
    client.close();
    await settled();
    // An evicted agent has lost its lease, which stays counted here until its time is up; connecting again takes another.
    await evictDurableObject(agent());
    client = await ChatClient.connect(threadId, apiKey);
    await agent().warmed();
    expect((await authorityState(userId)).leases).toHaveLength(2);
    expect(await admission(client, "after an eviction")).toBe("lease");
    client.close();
    await settled();
    const rotated = ((await (await fetchApp("/api/v1/users/me/api-key", { method: "POST" }, apiKey)).json()) as { apiKey: string }).apiKey;
    // The agent no longer has a socket open, but it held a lease: the rotation had it dropped, and freed both here.
    expect((await authorityState(userId)).leases).toEqual([]);
    client = await ChatClient.connect(threadId, rotated);
    await agent().warmed();
    expect((await authorityState(userId)).leases).toMatchObject([{ keyHash: await hashApiKey(rotated) }]);
    expect(await admission(client, "with the new key")).toBe("lease");
    client.close();
  });

  it("a lease past its time (and its grace) holds nothing: the authority drops it", async () => {
    const { userId, apiKey, threadId } = await newThread();
    const a = userAuthority(env, userId);
    const keyHash = await hashApiKey(apiKey);
    const rate = { limit: 100, windowSeconds: 60 };
    const first = await a.admitTurn({ turnId: crypto.randomUUID(), threadId, keyHash, rate, reserve: 10, lease: 10 });
    expect(first).toMatchObject({ ok: true, lease: { keyHash, tokens: 10 } });
    await runInDurableObject(env.UserAuthority.get(env.UserAuthority.idFromName(userId)), async (_a: UserAuthority, s) => {
      for (const [k, l] of await s.storage.list<Lease>({ prefix: "lease:" })) await s.storage.put(k, { ...l, expiresAt: Date.now() - LEASE_GRACE_MS });
    });
    const other = await anotherThread(apiKey);
    expect(await a.admitTurn({ turnId: crypto.randomUUID(), threadId: other, keyHash, rate, reserve: 10 })).toEqual({ ok: true, lease: undefined, searchVersion: 0 });
    expect((await authorityState(userId)).leases).toEqual([]);
    // A report of its use after that still counts the turn (it ran): its reservation and its slot.
    const late = await a.leaseUsed({ threadId, leaseId: (first as { lease: Lease }).lease.leaseId, turnId: "late", reserve: 10, at: Date.now(), windowSeconds: 60, lease: 10 });
    expect(late).toEqual({ searchVersion: 0 });
    expect(await authorityState(userId)).toMatchObject({ reserved: 3, turns: 3, leases: [] });
  });
});
