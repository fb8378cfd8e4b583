import type { UIMessage } from "ai";
import { type Db, withDb } from "../db/client.ts";
import { listMessages } from "../db/messages.ts";
import { describeError, log } from "../observability/log.ts";

/** The most history a woken agent loads from Postgres. */
const REHYDRATE_LIMIT = 10_000;

/**
 * A thread agent that wakes with no transcript while Postgres has one (storage reset, a move,
 * history written elsewhere) loads it first, so the model and every client see the whole thread.
 * `persist` keeps it without writing it back to Postgres; `alongside` reads what else the agent
 * will want on the same connection (a new agent's first connection made two). Never throws.
 */
export async function rehydrate(env: Env, threadId: string, persist: (messages: UIMessage[]) => Promise<void>, alongside?: (db: Db) => Promise<unknown>): Promise<void> {
  try {
    const [{ messages }] = await withDb(env, (db) => Promise.all([listMessages(db, threadId, { limit: REHYDRATE_LIMIT }), alongside?.(db)]));
    if (messages.length) await persist(messages.map(({ createdAt: _at, ...m }) => m as UIMessage));
  } catch (err) {
    log("warn", "rehydrate_failed", { threadId, error: describeError(err) });
  }
}
