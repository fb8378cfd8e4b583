import type { MessageChunks } from "../db/message-search.ts";
import { type AppliedOps, applyMessageOps, INDEXED_ROLES, insertSummaries, type MessageOp } from "../db/messages.ts";
import { describeError, log } from "../observability/log.ts";
import { embedMessages, indexThreadMessages } from "../search/message-index.ts";
import type { SearchDeps } from "../search/search.ts";
import { withTimeout } from "../resilience.ts";
import type { ContextWindow } from "./context-window.ts";
import { Outbox } from "./outbox.ts";

type Host = {
  threadId: () => string;
  deps: () => SearchDeps;
  window: ContextWindow;
  /** Schedules `retryIndex` on the agent in this many seconds (durably: it survives eviction). */
  schedule: (seconds: number) => Promise<void>;
};

/**
 * How long a write waits for its messages' embeddings before it queues them instead. A queued
 * message costs an embedding call and two connections more, so a slow embedder is waited for: at 3 s,
 * 100 threads on 2 cores queued most messages and doubled Postgres' work (5.4 connections a turn
 * against 2: bench/README.md, "Turns"). A failing one is queued once the call's retries are spent (about 6 s).
 */
const EMBED_TIMEOUT_MS = 15_000;

/**
 * A thread's writes to Postgres with their search index: the outbox's batch goes in one transaction
 * with its messages' chunks, embedded just before (one connection and one transaction a turn, where
 * indexing after the write took two more of each and a queue row in and out: bench/README.md). A
 * message the embedder could not take in time is queued in that transaction instead, and indexed
 * here in the background (src/search/message-index.ts), as are the thread's summaries copied beside
 * its messages; a failed run is tried again with the outbox's backoff. Each of these transactions
 * moves the owner's message index version itself (migrations/0011), which is what their cached
 * message searches are keyed by: nothing here tells the cache.
 */
export class MessageIndexer {
  #running: Promise<void> | undefined;
  #again = false;
  #attempt = 0;

  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /** Applies the outbox's batch (throws as Postgres does: the outbox keeps the batch for its retry). */
  async write(ops: MessageOp[]): Promise<AppliedOps> {
    const deps = this.host.deps();
    const chunks = await this.#embed(deps, ops);
    const applied = await deps.db((db) => applyMessageOps(db, this.host.threadId(), ops, chunks && { chunks, embedder: deps.embedder.name }));
    if (applied.queued || this.host.window.unsynced().length) this.kick();
    return applied;
  }

  /** The chunks of every indexed message in `ops` (by its place), embedded in one call; undefined when the embedder fails or is slow (they are queued). */
  async #embed(deps: SearchDeps, ops: MessageOp[]): Promise<Map<number, MessageChunks> | undefined> {
    const indexed = [...ops.entries()].flatMap(([i, o]) =>
      o.op === "upsert" && (INDEXED_ROLES as readonly string[]).includes(o.message.role) ? [{ i, parts: o.message.parts }] : [],
    );
    if (!indexed.length) return undefined;
    try {
      const chunks = await withTimeout(
        embedMessages(
          deps,
          indexed.map((m) => m.parts),
        ),
        EMBED_TIMEOUT_MS,
        () => new Error("embedding timed out"),
      );
      return new Map(indexed.map((m, k) => [m.i, chunks[k]!]));
    } catch (err) {
      log("warn", "message_embed_failed", { threadId: this.host.threadId(), messages: indexed.length, error: describeError(err) });
      return undefined;
    }
  }

  kick(): void {
    if (this.#running) return void (this.#again = true);
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Waits for the run in progress (tests, and a wipe that must not race it). */
  settled(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /** The scheduler's retry. */
  retry(): Promise<void> {
    this.kick();
    return this.settled();
  }

  async #run(): Promise<void> {
    const threadId = this.host.threadId();
    try {
      const summaries = this.host.window.unsynced();
      if (summaries.length) this.host.window.markSynced(await this.host.deps().db((db) => insertSummaries(db, threadId, summaries)));
      await indexThreadMessages(this.host.deps(), threadId);
      this.#attempt = 0;
    } catch (err) {
      const seconds = Outbox.backoffSeconds(this.#attempt++);
      log("warn", "message_index_failed", { threadId, attempt: this.#attempt, retryInSeconds: seconds, error: describeError(err) });
      await this.host.schedule(seconds).catch(() => {});
    }
  }
}
