import type { MessageOp } from "../db/messages.ts";
import { insertSummaries } from "../db/messages.ts";
import { describeError, log } from "../observability/log.ts";
import { userScope } from "../search/cache.ts";
import { indexThreadMessages } from "../search/message-index.ts";
import { invalidate, type SearchDeps } from "../search/search.ts";
import type { ContextWindow } from "./context-window.ts";
import { Outbox } from "./outbox.ts";

type Host = {
  threadId: () => string;
  ownerId: () => Promise<string>;
  deps: () => SearchDeps;
  window: ContextWindow;
  /** Schedules `retryIndex` on the agent in this many seconds (durably: it survives eviction). */
  schedule: (seconds: number) => Promise<void>;
};

/**
 * What follows a thread's writes to Postgres, in its agent, in the background: its queued messages
 * are indexed for search (src/search/message-index.ts), its summaries copied beside the messages,
 * and the owner's cached searches invalidated when messages went (a delete or a clear; their index
 * rows cascade). The queue lives in Postgres, written with each message, so an outage of Postgres
 * or the embedder only delays this: a failed run is tried again with the outbox's backoff.
 */
export class MessageIndexer {
  #running: Promise<void> | undefined;
  #again = false;
  #attempt = 0;

  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /** A batch of changes reached Postgres. */
  async written(ops: readonly MessageOp[]): Promise<void> {
    if (ops.some((o) => o.op === "delete" || o.op === "clear")) await this.invalidate();
    this.kick();
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

  /** The owner's cached searches are stale (never throws: what changed has committed). */
  async invalidate(): Promise<void> {
    const owner = await this.host.ownerId().catch(() => undefined);
    if (owner) await invalidate(this.host.deps(), userScope(owner));
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
