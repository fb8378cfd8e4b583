import { DurableObject } from "cloudflare:workers";
import { getAgentByName } from "agents";
import { parseTicket, signTicket, TICKET_TTL_SECONDS, verifyTicket } from "../auth/tickets";
import { withDb } from "../db/client";
import type { User } from "../db/schema";
import { getThread } from "../db/threads";
import { getUser, setApiKeyHash } from "../db/users";
import { toAppError, type ErrorCode } from "../errors";
import { log } from "../observability/log";
import { takeSlot, type RateDecision } from "./sliding-window";

/** What the hot path needs of a user, kept by their authority (Postgres has the full row). */
export type UserSnapshot = { id: string; email: string; name: string | null; tokenBudget: number | null; createdAt: string };
export type Refusal = { ok: false; code: ErrorCode; message: string; retryAfter?: number };
type Identity = { user: UserSnapshot; keys: string[] };

export const snapshotOf = (u: User): UserSnapshot => ({ id: u.id, email: u.email, name: u.name, tokenBudget: u.tokenBudget, createdAt: u.createdAt.toISOString() });

const refuse = (code: ErrorCode, message: string): Refusal => ({ ok: false, code, message });
const unauthorized = () => refuse("unauthorized", "invalid token");
const threadNotFound = () => refuse("thread_not_found", "thread not found");

// Storage keys. A thread this user owns: `t:<id>`; their live sockets on a thread: `live:<id>`.
const IDENTITY = "identity";
const DELETED = "deleted";
const TICKET_SECRET = "ticket-secret";

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
      const user = await withDb(this.env, (db) => getUser(db, this.#userId));
      if (!user?.apiKeyHash) return null;
      this.#identity = { user: snapshotOf(user), keys: [user.apiKeyHash] };
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
    await this.ctx.storage.delete([`t:${threadId}`, `live:${threadId}`]);
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

  /** The user's record changed in Postgres (a budget, say): reload it on next use. */
  async invalidate(): Promise<void> {
    this.#identity = undefined;
    await this.ctx.storage.delete(IDENTITY);
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
    const r = await this.ctx.blockConcurrencyWhile(async () => fn().then((value) => ({ value }), (error: unknown) => ({ error })));
    if ("error" in r) throw r.error;
    return r.value;
  }

  async #closeSockets(keyHashes: string[] | "all", reason: string) {
    const live = await this.ctx.storage.list<number>({ prefix: "live:" });
    await Promise.all(
      [...live.keys()].map(async (key) => {
        const threadId = key.slice("live:".length);
        const open = await getAgentByName(this.env.ThreadAgent, threadId)
          .then((agent) => agent.revoke(this.#userId, keyHashes, reason))
          .catch(() => undefined);
        if (open !== undefined) await this.sockets(threadId, open);
      }),
    );
  }
}

export const userAuthority = (env: Env, userId: string) => env.UserAuthority.get(env.UserAuthority.idFromName(userId));
