import { DurableObject } from "cloudflare:workers";
import { threadAgent } from "../agent/client.ts";
import { parseTicket, signTicket, TICKET_TTL_SECONDS, verifyTicket } from "../auth/tickets.ts";
import { withDb } from "../db/client.ts";
import { appendSpend, spendSince, type SpendEntry } from "../db/spend.ts";
import type { User } from "../db/schema.ts";
import { getThread } from "../db/threads.ts";
import { getUser, setApiKeyHash } from "../db/users.ts";
import { AppError, toAppError, type ErrorCode, type Refusal } from "../errors.ts";
import { describeError, log } from "../observability/log.ts";
import { backoffMs } from "../resilience.ts";
import { addSpend, current, exhausted, noSpend, periodStarts, remaining, type Budgets, type Spent } from "./budget.ts";
import { LEASE_GRACE_MS, LEASE_MS, leaseGrantable, type Lease, type RateRule } from "./lease.ts";
import { recordSlot, slotsTaken, takeSlot, type RateDecision } from "./sliding-window.ts";

/** What the hot path needs of a user, kept by their authority (Postgres has the full row). */
export type UserSnapshot = {
  id: string;
  email: string;
  name: string | null;
  tokenBudget: number | null;
  dailyTokenBudget: number | null;
  monthlyTokenBudget: number | null;
  createdAt: string;
};
export type { Refusal };
type Identity = { user: UserSnapshot; keys: string[] };
type HeldLease = Lease & { threadId: string };
/** One model call's spend as a thread agent reports it; the authority adds who and where. */
export type CallSpend = Pick<SpendEntry, "entryId" | "kind" | "model" | "inputTokens" | "outputTokens" | "at">;

export const snapshotOf = (u: User): UserSnapshot => ({
  id: u.id,
  email: u.email,
  name: u.name,
  tokenBudget: u.tokenBudget,
  dailyTokenBudget: u.dailyTokenBudget,
  monthlyTokenBudget: u.monthlyTokenBudget,
  createdAt: u.createdAt.toISOString(),
});
const leaseTokens = (leases: readonly Lease[]) => leases.reduce((n, l) => n + l.tokens, 0);
const budgetsOf = (u: UserSnapshot): Budgets => ({ lifetime: u.tokenBudget, daily: u.dailyTokenBudget, monthly: u.monthlyTokenBudget });
/** A turn that never settles (its agent was evicted mid-turn) stops holding its reservation after this. */
const RESERVATION_TTL_MS = 15 * 60_000;
const LEDGER_BATCH = 200;
const LEDGER_DELAY_MS = 60_000;
const refuse = (code: ErrorCode, message: string): Refusal => ({ ok: false, code, message });
const unauthorized = () => refuse("unauthorized", "invalid token");
const threadNotFound = () => refuse("thread_not_found", "thread not found");

// Storage keys. A thread this user owns: `t:<id>`; their live sockets on a thread: `live:<id>`; a turn's
// reservation: `res:<turnId>`; a thread's lease: `lease:<threadId>:<leaseId>`.
const IDENTITY = "identity";
const SPENT = "spent";
const LEDGER_RETRY = "ledger-retry";
const DELETED = "deleted";
const TICKET_SECRET = "ticket-secret";
const SEARCH_VERSION = "search-version";

/**
 * One per user (named by user id): what every request and turn of that user must decide fast and
 * without Postgres: which key hashes are valid, which threads are theirs, their sockets, their turn
 * rate. Postgres stays the system of record; this object loads a user from it once and is told of
 * every change (key rotation and deletion are made here, so they are in force here first).
 */
export class UserAuthority extends DurableObject<Env> {
  #identity: Identity | undefined;

  get #userId(): string {
    return this.ctx.id.name!;
  }

  /** The user and their valid keys; loaded from Postgres the first time. Null: no such user (or deleted). */
  async #load(): Promise<Identity | null> {
    if (this.#identity) return this.#identity;
    if (await this.ctx.storage.get(DELETED)) return null;
    const stored = await this.ctx.storage.get<Identity>(IDENTITY);
    if (stored) return (this.#identity = stored);
    // One load at a time: a rotation waiting behind it must not be overwritten by an older read.
    return this.#exclusive(async () => {
      if (this.#identity) return this.#identity;
      const now = new Date();
      const loaded = await withDb(this.env, async (db) => {
        const user = await getUser(db, this.#userId);
        return user?.apiKeyHash ? { user, spend: await spendSince(db, user.id, periodStarts(now)) } : null;
      });
      if (!loaded) return null;
      this.#identity = { user: snapshotOf(loaded.user), keys: [loaded.user.apiKeyHash!] };
      // The ledger's totals, plus anything recorded here and not yet written to it.
      const pending = [...(await this.ctx.storage.list<SpendEntry>({ prefix: "ledger:" })).values()].reduce((n, e) => n + e.inputTokens + e.outputTokens, 0);
      const base = noSpend(now);
      await this.ctx.storage.put({
        [IDENTITY]: this.#identity,
        [SPENT]: {
          lifetime: loaded.spend.lifetime + pending,
          day: { ...base.day, tokens: loaded.spend.day + pending },
          month: { ...base.month, tokens: loaded.spend.month + pending },
        },
      });
      return this.#identity;
    });
  }

  /** Runs `fn` on the loaded identity; refusals, and a database that is needed but down, come back as values (RPC keeps no error types). */
  async #withIdentity<T>(keyHash: string | undefined, fn: (identity: Identity) => Promise<T | Refusal>): Promise<T | Refusal> {
    try {
      const identity = await this.#load();
      if (!identity || (keyHash !== undefined && !identity.keys.includes(keyHash))) return unauthorized();
      return await fn(identity);
    } catch (err) {
      const e = toAppError(err);
      if (e.status >= 500 && e.code !== "database_unavailable") log("error", "authority_failed", { userId: this.#userId, code: e.code, error: String(err) });
      return refuse(e.code === "database_unavailable" ? "database_unavailable" : "internal_error", e.code === "database_unavailable" ? "database unavailable" : "internal error");
    }
  }

  /** The user whose key hashes to `keyHash`. */
  authenticate(keyHash: string): Promise<{ ok: true; user: UserSnapshot } | Refusal> {
    return this.#withIdentity(keyHash, async ({ user }) => ({ ok: true as const, user }));
  }

  /**
   * May this key (or ticket) open `threadId`? Yes when it is valid and the thread is this user's.
   * A socket (`maxSockets` set) also needs room under the user's socket cap, and is counted at once.
   */
  async admitToThread(input: { threadId: string; keyHash?: string; ticket?: string; maxSockets?: number }): Promise<{ ok: true; user: UserSnapshot; keyHash: string } | Refusal> {
    return this.#withIdentity(undefined, async ({ user, keys }) => {
      let keyHash = input.keyHash;
      if (input.ticket !== undefined) {
        const t = parseTicket(input.ticket);
        const secret = await this.ctx.storage.get<Uint8Array>(TICKET_SECRET);
        // A ticket is signed over one key: rotation ends every ticket issued with the old one.
        keyHash = t && secret ? (await Promise.all(keys.map(async (k) => ((await verifyTicket(secret, t, input.threadId, k)) ? k : undefined)))).find(Boolean) : undefined;
        if (!keyHash) return refuse("unauthorized", "invalid or expired ticket");
      }
      if (!keyHash || !keys.includes(keyHash)) return unauthorized();
      if (!(await this.#owns(input.threadId))) return threadNotFound();
      if (input.maxSockets !== undefined) {
        const live = await this.ctx.storage.list<number>({ prefix: "live:" });
        const open = [...live.values()].reduce((n, v) => n + v, 0);
        if (open >= input.maxSockets) return refuse("too_many_connections", `too many open connections: at most ${input.maxSockets} per user`);
        await this.ctx.storage.put(`live:${input.threadId}`, (live.get(`live:${input.threadId}`) ?? 0) + 1);
      }
      return { ok: true as const, user, keyHash };
    });
  }

  /** Whether the thread is this user's: known here, or (a thread older than this object's record of it) confirmed in Postgres once. */
  async #owns(threadId: string): Promise<boolean> {
    if (await this.ctx.storage.get(`t:${threadId}`)) return true;
    const thread = await withDb(this.env, (db) => getThread(db, threadId));
    if (thread?.userId !== this.#userId) return false;
    await this.ctx.storage.put(`t:${threadId}`, true);
    return true;
  }

  /** A ticket for one thread, valid for TICKET_TTL_SECONDS, for a caller who holds a valid key. */
  async issueTicket(keyHash: string, threadId: string): Promise<{ ok: true; ticket: string; expiresAt: number } | Refusal> {
    return this.#withIdentity(keyHash, async () => {
      if (!(await this.#owns(threadId))) return threadNotFound();
      let secret = await this.ctx.storage.get<Uint8Array>(TICKET_SECRET);
      if (!secret) await this.ctx.storage.put(TICKET_SECRET, (secret = crypto.getRandomValues(new Uint8Array(32))));
      const expiresAt = Math.floor(Date.now() / 1000) + TICKET_TTL_SECONDS;
      return { ok: true as const, ticket: await signTicket(secret, { userId: this.#userId, threadId, keyHash, expiresAt }), expiresAt };
    });
  }

  async addThread(threadId: string): Promise<void> {
    await this.ctx.storage.put(`t:${threadId}`, true);
  }

  /** Before the thread is deleted in Postgres: from now on no one may open it. */
  async removeThread(threadId: string): Promise<void> {
    const leases = await this.ctx.storage.list({ prefix: `lease:${threadId}:` });
    await this.ctx.storage.delete([`t:${threadId}`, `live:${threadId}`, ...leases.keys()]);
  }

  /** The version of this user's documents, as search reads them: the key of their cached searches (their messages' is in Postgres: src/db/message-search.ts). */
  async searchVersion(): Promise<number> {
    return (await this.ctx.storage.get<number>(SEARCH_VERSION)) ?? 0;
  }

  /** Their documents changed (committed): cached searches of them are not read again. Here, not in KV, whose keys take one write a second. */
  async bumpSearchVersion(): Promise<number> {
    const next = (await this.searchVersion()) + 1;
    await this.ctx.storage.put(SEARCH_VERSION, next);
    return next;
  }

  /** A thread agent's count of this user's open sockets on it (on every connect and close). */
  async sockets(threadId: string, open: number): Promise<void> {
    if (open > 0) await this.ctx.storage.put(`live:${threadId}`, open);
    else await this.ctx.storage.delete(`live:${threadId}`);
  }

  /**
   * Replaces the user's key: in Postgres first (the system of record), then here, then every socket
   * opened with an old key is closed. Between the two writes nothing else runs on this object.
   */
  async rotateKey(newHash: string): Promise<{ ok: true } | Refusal> {
    const result = await this.#withIdentity(undefined, (identity) =>
      this.#exclusive(async () => {
        await withDb(this.env, (db) => setApiKeyHash(db, this.#userId, newHash));
        const revoked = identity.keys;
        this.#identity = { ...identity, keys: [newHash] };
        await this.ctx.storage.put(IDENTITY, this.#identity);
        return { ok: true as const, revoked };
      }),
    );
    if (!result.ok) return result;
    await this.#closeSockets(result.revoked, "api key rotated");
    return { ok: true };
  }

  /** Before the user is deleted in Postgres: every key stops working here and every socket closes. */
  async deleteUser(): Promise<void> {
    this.#identity = undefined;
    await this.ctx.storage.put(DELETED, true);
    await this.ctx.storage.delete(IDENTITY);
    await this.#closeSockets("all", "user deleted");
  }

  /** After the user is gone from Postgres: nothing of theirs is kept. */
  async forget(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }

  /** The user's record changed in Postgres (budgets, name): the new one, as written there. */
  async updateUser(user: UserSnapshot): Promise<void> {
    const identity = await this.#load().catch(() => null);
    if (!identity) return;
    this.#identity = { ...identity, user };
    await this.ctx.storage.put(IDENTITY, this.#identity);
    // Leases were granted under the old budgets: the threads drop theirs, and their next turns ask here.
    await Promise.all([...(await this.#leaseThreads())].map((threadId) => this.#dropLeases(threadId, (agent) => agent.dropLease())));
  }

  /**
   * Admission for one turn, in one call: the key is still valid, no budget is spent (spent plus
   * what turns in flight reserved), and the turn rate window has room. Then the turn reserves its
   * estimate until it settles. A refusal says which budget and when it resets.
   */
  async admitTurn(input: {
    turnId: string;
    threadId: string;
    keyHash?: string;
    rate: RateRule;
    reserve: number;
    /** The thread's lease it no longer holds (it did not cover this turn). */
    release?: string;
    /** Tokens to lease for the thread's next turn, if there is spare room (./lease.ts). */
    lease?: number;
  }): Promise<{ ok: true; lease?: Lease; searchVersion: number } | Refusal> {
    return this.#withIdentity(input.keyHash, async ({ user }) => {
      if (input.release) await this.ctx.storage.delete(`lease:${input.threadId}:${input.release}`);
      const now = new Date();
      const leases = await this.#leases(now);
      const spent = await this.#spent(now);
      const over = exhausted(budgetsOf(user), spent, (await this.#reserved()) + leaseTokens(leases), now);
      if (over) {
        const when = over.resetsAt ? `; it resets at ${over.resetsAt.toISOString()}` : "";
        return new AppError("token_budget_exhausted", `your ${over.period} token budget (${over.budget}) is spent${when}`, {
          details: { budget: over.period, limit: over.budget, used: over.used, resetsAt: over.resetsAt?.toISOString() ?? null },
        }).toRefusal();
      }
      const rate = await takeSlot(this.ctx.storage, "turns", input.rate.limit, input.rate.windowSeconds, now.getTime(), leases.length);
      if (!rate.ok) return new AppError("rate_limited", `too many turns; retry in ${rate.retryAfterSeconds} s`, { retryAfter: rate.retryAfterSeconds }).toRefusal();
      await this.ctx.storage.put(`res:${input.turnId}`, { tokens: input.reserve, at: now.getTime(), threadId: input.threadId });
      const lease =
        input.lease && input.keyHash
          ? await this.#grant(user, { threadId: input.threadId, keyHash: input.keyHash, tokens: input.lease, rate: input.rate }, leases, now)
          : undefined;
      return { ok: true as const, lease, searchVersion: await this.searchVersion() };
    });
  }

  /** A lease for a thread's next turn, asked for as a client connects (the key checked), if there is spare room for one. */
  async lease(input: { threadId: string; keyHash: string; tokens: number; rate: RateRule }): Promise<{ ok: true; lease?: Lease } | Refusal> {
    return this.#withIdentity(input.keyHash, async ({ user }) => {
      const now = new Date();
      return { ok: true as const, lease: await this.#grant(user, input, await this.#leases(now), now) };
    });
  }

  /**
   * A turn started on the thread's lease at `at`: the lease becomes the turn's reservation (its own
   * estimate) and the turn's slot in the rate window, from when it started. A lease this object had
   * dropped meanwhile (rotation, expiry) was used before the agent knew: the turn is counted all the
   * same. Answers with the lease for the thread's next turn, if there is spare room for one, and
   * the version of the user's documents (the turn's searches need it: a call less on their path).
   */
  async leaseUsed(input: {
    threadId: string;
    leaseId: string;
    turnId: string;
    reserve: number;
    at: number;
    windowSeconds: number;
    lease: number;
  }): Promise<{ lease?: Lease; searchVersion: number }> {
    const key = `lease:${input.threadId}:${input.leaseId}`;
    const used = await this.ctx.storage.get<HeldLease>(key);
    const now = new Date();
    await this.ctx.storage.delete(key);
    await this.ctx.storage.put(`res:${input.turnId}`, { tokens: input.reserve, at: now.getTime(), threadId: input.threadId });
    await recordSlot(this.ctx.storage, "turns", input.at, input.windowSeconds);
    const identity = await this.#load().catch(() => null);
    const searchVersion = await this.searchVersion();
    if (!used || !identity?.keys.includes(used.keyHash)) return { searchVersion };
    return {
      lease: await this.#grant(identity.user, { threadId: input.threadId, keyHash: used.keyHash, tokens: input.lease, rate: used.rate }, await this.#leases(now), now),
      searchVersion,
    };
  }

  /** A lease for a thread's next turn, when the budgets and the rate window have room to spare for it (./lease.ts). */
  async #grant(user: UserSnapshot, want: { threadId: string; keyHash: string; tokens: number; rate: RateRule }, leases: HeldLease[], now: Date): Promise<Lease | undefined> {
    const grantable = leaseGrantable({
      budgets: budgetsOf(user),
      spent: await this.#spent(now),
      reserved: (await this.#reserved()) + leaseTokens(leases),
      tokens: want.tokens,
      calls: await slotsTaken(this.ctx.storage, "turns", want.rate.windowSeconds, now.getTime()),
      leases: leases.length,
      limit: want.rate.limit,
      now,
    });
    if (!grantable) return undefined;
    const lease: Lease = { leaseId: crypto.randomUUID(), keyHash: want.keyHash, tokens: want.tokens, rate: want.rate, expiresAt: now.getTime() + LEASE_MS };
    await this.ctx.storage.put(`lease:${want.threadId}:${lease.leaseId}`, { ...lease, threadId: want.threadId } satisfies HeldLease);
    return lease;
  }

  /** The leases held now; those past their time (and its grace) are dropped: their slots and tokens are free again. */
  async #leases(now: Date): Promise<HeldLease[]> {
    const all = await this.ctx.storage.list<HeldLease>({ prefix: "lease:" });
    const stale = [...all].filter(([, l]) => l.expiresAt + LEASE_GRACE_MS <= now.getTime()).map(([k]) => k);
    if (stale.length) await this.ctx.storage.delete(stale);
    return [...all].filter(([k]) => !stale.includes(k)).map(([, l]) => l);
  }

  /**
   * A turn's model calls, as they finish: added to the spend here at once and to the ledger in
   * Postgres through this object's outbox. `final` ends the turn's reservation. Answers whether a
   * further call still has room (a multi-step turn stops when it has none).
   */
  async recordSpend(input: { turnId: string; threadId: string; calls: CallSpend[]; final: boolean }): Promise<{ room: boolean }> {
    const now = new Date();
    let spent = await this.#spent(now);
    const entries: Record<string, SpendEntry> = {};
    for (const c of input.calls) {
      spent = addSpend(spent, c.inputTokens + c.outputTokens, now);
      entries[`ledger:${String(c.at).padStart(15, "0")}:${c.entryId}`] = { ...c, userId: this.#userId, threadId: input.threadId, turnId: input.turnId };
    }
    await this.ctx.storage.put({ ...entries, [SPENT]: spent });
    if (input.final) await this.ctx.storage.delete(`res:${input.turnId}`);
    if (input.calls.length) await this.#drainSoon();
    const identity = this.#identity ?? (await this.ctx.storage.get<Identity>(IDENTITY));
    // What others hold: their reservations and leases (not this thread's own lease for its next turn).
    const leases = (await this.#leases(now)).filter((l) => l.threadId !== input.threadId);
    const others = (await this.#reserved()) + leaseTokens(leases) - (input.final ? 0 : ((await this.ctx.storage.get<{ tokens: number }>(`res:${input.turnId}`))?.tokens ?? 0));
    return { room: !identity || !exhausted(budgetsOf(identity.user), spent, others, now) };
  }

  /** What is left of each of the user's budgets, by the spend known here (ahead of the ledger). */
  async budgets(): Promise<{ budgets: Budgets; remaining: Budgets; spent: Spent } | Refusal> {
    return this.#withIdentity(undefined, async ({ user }) => {
      const now = new Date();
      const spent = await this.#spent(now);
      return { budgets: budgetsOf(user), remaining: remaining(budgetsOf(user), spent, now), spent };
    });
  }

  /** Writes the ledger entries still waiting here to Postgres now; usage routes call this before they read the ledger. */
  async flushLedger(): Promise<{ ok: true } | Refusal> {
    try {
      await this.#drainLedger(true);
      return { ok: true };
    } catch (err) {
      return toAppError(err).toRefusal();
    }
  }

  /**
   * The ledger is written a minute after a turn's calls, so a user's calls in that time go in one
   * transaction (a turn with a tool step is two calls: two transactions when each was written at once;
   * at 5 s, still one a turn once turns took 9 s at 100 threads; at 15 s, 0.67 a turn once they took
   * 20 s: bench/README.md, "Turns"). The entries are durable here meanwhile and count at once; the
   * usage routes write them before they read.
   */
  async #drainSoon() {
    const at = Date.now() + LEDGER_DELAY_MS;
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > at) await this.ctx.storage.setAlarm(at);
  }

  #draining: Promise<void> | undefined;
  #drainLedger(rethrow = false): Promise<void> {
    this.#draining ??= (async () => {
      try {
        for (;;) {
          const batch = await this.ctx.storage.list<SpendEntry>({ prefix: "ledger:", limit: LEDGER_BATCH });
          if (!batch.size) break;
          await withDb(this.env, (db) => appendSpend(db, [...batch.values()]));
          await this.ctx.storage.delete([...batch.keys()]);
        }
        await this.ctx.storage.delete(LEDGER_RETRY);
      } catch (err) {
        // Postgres is down: the entries wait here (and count already); the alarm tries again, backing off.
        const attempt = ((await this.ctx.storage.get<number>(LEDGER_RETRY)) ?? 0) + 1;
        await this.ctx.storage.put(LEDGER_RETRY, attempt);
        await this.ctx.storage.setAlarm(Date.now() + 1000 + backoffMs(attempt, { baseDelayMs: 1000, maxDelayMs: 300_000 }));
        log("warn", "ledger_flush_failed", { userId: this.#userId, attempt, error: describeError(err) });
        throw err;
      } finally {
        this.#draining = undefined;
      }
    })();
    return rethrow ? this.#draining : this.#draining.catch(() => {});
  }

  override async alarm(): Promise<void> {
    await this.#drainLedger();
  }

  async #spent(now: Date): Promise<Spent> {
    return current((await this.ctx.storage.get<Spent>(SPENT)) ?? noSpend(now), now);
  }

  /** Tokens reserved by this user's turns in flight; reservations past their time are dropped. */
  async #reserved(): Promise<number> {
    const all = await this.ctx.storage.list<{ tokens: number; at: number }>({ prefix: "res:" });
    const stale = [...all].filter(([, r]) => r.at < Date.now() - RESERVATION_TTL_MS).map(([k]) => k);
    if (stale.length) await this.ctx.storage.delete(stale);
    return [...all].filter(([k]) => !stale.includes(k)).reduce((n, [, r]) => n + r.tokens, 0);
  }

  takeTurn(limit: number, windowSeconds: number): Promise<RateDecision> {
    return takeSlot(this.ctx.storage, "turns", limit, windowSeconds);
  }

  /** One call against a named per-user limit (`search`, `ingest`, ...): a sliding window kept here. */
  take(bucket: string, limit: number, windowSeconds: number): Promise<RateDecision> {
    return takeSlot(this.ctx.storage, `rate:${bucket}`, limit, windowSeconds);
  }

  /** Runs `fn` with every other event on this object held back. A throw inside blockConcurrencyWhile resets the object, so errors are carried out as values. */
  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const r = await this.ctx.blockConcurrencyWhile(async () =>
      fn().then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
    );
    if ("error" in r) throw r.error;
    return r.value;
  }

  /** The threads whose agents hold a lease, by this object's record (expired ones included: an agent may not yet know). */
  async #leaseThreads(): Promise<Set<string>> {
    return new Set([...(await this.ctx.storage.list<HeldLease>({ prefix: "lease:" })).values()].map((l) => l.threadId));
  }

  /**
   * Has a thread's agent drop its lease (`drop`, over RPC), then frees what the leases granted before
   * the call held: one granted after it was asked for after the drop, and the agent may hold it.
   */
  async #dropLeases<T>(threadId: string, drop: (agent: Awaited<ReturnType<typeof threadAgent>>) => Promise<T>): Promise<T | undefined> {
    const before = Date.now();
    const outcome = await threadAgent(this.env, threadId)
      .then(drop)
      .then(
        (result) => ({ result }),
        () => undefined,
      );
    // An agent that did not answer may still hold its lease: it stays counted until its time is up.
    if (!outcome) return undefined;
    const held = await this.ctx.storage.list<HeldLease>({ prefix: `lease:${threadId}:` });
    const freed = [...held].filter(([, l]) => l.expiresAt - LEASE_MS < before).map(([k]) => k);
    if (freed.length) await this.ctx.storage.delete(freed);
    return outcome.result;
  }

  /** Closes the sockets opened with these keys on every thread with one open, and has every thread holding a lease drop it. */
  async #closeSockets(keyHashes: string[] | "all", reason: string) {
    const live = [...(await this.ctx.storage.list<number>({ prefix: "live:" })).keys()].map((key) => key.slice("live:".length));
    await Promise.all(
      [...new Set([...live, ...(await this.#leaseThreads())])].map(async (threadId) => {
        const open = await this.#dropLeases(threadId, (agent) => agent.revoke(this.#userId, keyHashes, reason));
        if (open !== undefined && live.includes(threadId)) await this.sockets(threadId, open);
      }),
    );
  }
}
