import { DurableObject } from "cloudflare:workers";
import { parseTicket, signTicket, TICKET_TTL_SECONDS, verifyTicket } from "../auth/tickets.ts";
import { withDb } from "../db/client.ts";
import { spendSince } from "../db/spend.ts";
import type { User } from "../db/schema.ts";
import { getThread } from "../db/threads.ts";
import { getUser, setApiKeyHash } from "../db/users.ts";
import { toAppError, type ErrorCode, type Refusal } from "../errors.ts";
import { log } from "../observability/log.ts";
import { exhausted, periodStarts, remaining, type Budgets, type Spent } from "./budget.ts";
import type { Lease, RateRule } from "./lease.ts";
import { takeSlot, type RateDecision } from "./sliding-window.ts";
import { SpendLedger, type CallSpend } from "./spend-ledger.ts";
import { ThreadReach } from "./thread-reach.ts";
import { TurnAdmissions } from "./turn-admission.ts";

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

export const snapshotOf = (u: User): UserSnapshot => ({
  id: u.id,
  email: u.email,
  name: u.name,
  tokenBudget: u.tokenBudget,
  dailyTokenBudget: u.dailyTokenBudget,
  monthlyTokenBudget: u.monthlyTokenBudget,
  createdAt: u.createdAt.toISOString(),
});
const budgetsOf = (u: UserSnapshot): Budgets => ({ lifetime: u.tokenBudget, daily: u.dailyTokenBudget, monthly: u.monthlyTokenBudget });
const refuse = (code: ErrorCode, message: string): Refusal => ({ ok: false, code, message });
const unauthorized = () => refuse("unauthorized", "invalid token");
const threadNotFound = () => refuse("thread_not_found", "thread not found");

// Storage keys (with ./spend-ledger.ts's and ./turn-admission.ts's). A thread this user owns: `t:<id>`;
// their live sockets on a thread: `live:<id>`.
const IDENTITY = "identity";
const DELETED = "deleted";
const TICKET_SECRET = "ticket-secret";
const SEARCH_VERSION = "search-version";

/**
 * One per user (named by user id): what every request and turn of that user must decide fast and
 * without Postgres: which key hashes are valid and which threads are theirs (here), their turns'
 * admissions (./turn-admission.ts), their spend (./spend-ledger.ts), their sockets and the revocations
 * that close them (./thread-reach.ts). Postgres stays the system of record; this object loads a user from it once and is told of
 * every change (key rotation and deletion are made here, so they are in force here first).
 */
export class UserAuthority extends DurableObject<Env> {
  #identity: Identity | undefined;
  readonly #ledger = new SpendLedger(this.ctx.storage, this.env, this.ctx.id.name!);
  readonly #admissions = new TurnAdmissions(this.ctx.storage, this.#ledger);
  readonly #reach = new ThreadReach(this.ctx.storage, this.env, this.#admissions, this.ctx.id.name!);

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
      // The spend first: an identity stored without it would not be loaded again.
      await this.#ledger.load(loaded.spend, now);
      this.#identity = { user: snapshotOf(loaded.user), keys: [loaded.user.apiKeyHash!] };
      await this.ctx.storage.put(IDENTITY, this.#identity);
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
      const full = input.maxSockets === undefined ? undefined : await this.#reach.open(input.threadId, input.maxSockets);
      return full ?? { ok: true as const, user, keyHash };
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
    await this.#admissions.free(threadId);
    await this.ctx.storage.delete([`t:${threadId}`, `live:${threadId}`]);
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
  sockets(threadId: string, open: number): Promise<void> {
    return this.#reach.set(threadId, open);
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
    await this.#reach.revoke(result.revoked, "api key rotated");
    return { ok: true };
  }

  /** Before the user is deleted in Postgres: every key stops working here and every socket closes. */
  async deleteUser(): Promise<void> {
    this.#identity = undefined;
    await this.ctx.storage.put(DELETED, true);
    await this.ctx.storage.delete(IDENTITY);
    await this.#reach.revoke("all", "user deleted");
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
    await this.#reach.dropLeases();
  }

  /**
   * Admission for one turn, in one call: the key is still valid, no budget is spent and the rate
   * window has room (./turn-admission.ts); answers with the version of the user's documents too.
   */
  async admitTurn(input: Parameters<TurnAdmissions["admit"]>[1]): Promise<{ ok: true; lease?: Lease; searchVersion: number } | Refusal> {
    return this.#withIdentity(input.keyHash, async ({ user }) => {
      const r = await this.#admissions.admit(budgetsOf(user), input);
      return r.ok ? { ...r, searchVersion: await this.searchVersion() } : r;
    });
  }

  /** A lease for a thread's next turn, asked for as a client connects (the key checked), if there is spare room for one. */
  async lease(input: { threadId: string; keyHash: string; tokens: number; rate: RateRule }): Promise<{ ok: true; lease?: Lease } | Refusal> {
    return this.#withIdentity(input.keyHash, async ({ user }) => ({ ok: true as const, lease: await this.#admissions.grant(budgetsOf(user), input) }));
  }

  /**
   * A turn started on the thread's lease (./turn-admission.ts). Answers with the lease for the
   * thread's next turn, if its key is still valid and there is spare room, and the version of the
   * user's documents (the turn's searches need it: a call less on their path).
   */
  async leaseUsed(input: Parameters<TurnAdmissions["used"]>[0] & { lease: number }): Promise<{ lease?: Lease; searchVersion: number }> {
    const used = await this.#admissions.used(input);
    const identity = await this.#load().catch(() => null);
    const searchVersion = await this.searchVersion();
    if (!used || !identity?.keys.includes(used.keyHash)) return { searchVersion };
    const lease = await this.#admissions.grant(budgetsOf(identity.user), { threadId: input.threadId, keyHash: used.keyHash, tokens: input.lease, rate: used.rate });
    return { lease, searchVersion };
  }

  /**
   * A turn's model calls, as they finish: added to the spend at once and to the ledger in Postgres
   * (./spend-ledger.ts). `final` ends the turn's reservation. Answers whether a further call still
   * has room (a multi-step turn stops when it has none).
   */
  async recordSpend(input: { turnId: string; threadId: string; calls: CallSpend[]; final: boolean }): Promise<{ room: boolean }> {
    const now = new Date();
    const spent = await this.#ledger.record(input, now);
    if (input.final) await this.#ledger.settle(input.turnId);
    const identity = this.#identity ?? (await this.ctx.storage.get<Identity>(IDENTITY));
    // What others hold: their reservations and leases (not this thread's own lease for its next turn).
    const others = await this.#admissions.heldByOthers(input.threadId, input.turnId, input.final);
    return { room: !identity || !exhausted(budgetsOf(identity.user), spent, others, now) };
  }

  /** What is left of each of the user's budgets, by the spend known here (ahead of the ledger). */
  async budgets(): Promise<{ budgets: Budgets; remaining: Budgets; spent: Spent } | Refusal> {
    return this.#withIdentity(undefined, async ({ user }) => {
      const now = new Date();
      const spent = await this.#ledger.spent(now);
      return { budgets: budgetsOf(user), remaining: remaining(budgetsOf(user), spent, now), spent };
    });
  }

  /** Writes the ledger entries still waiting here to Postgres now; usage routes call this before they read the ledger. */
  async flushLedger(): Promise<{ ok: true } | Refusal> {
    try {
      await this.#ledger.drain(true);
      return { ok: true };
    } catch (err) {
      return toAppError(err).toRefusal();
    }
  }

  override async alarm(): Promise<void> {
    await this.#ledger.drain();
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
}
