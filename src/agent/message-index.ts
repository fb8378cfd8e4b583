import { type AppliedOps, applyMessageOps, insertSummaries, type MessageOp } from "../db/messages.ts";
import { describeError, log } from "../observability/log.ts";
import { indexThreadMessages } from "../search/message-index.ts";
import type { SearchDeps } from "../search/search.ts";
import type { ContextWindow } from "./context-window.ts";
import { Outbox } from "./outbox.ts";

type Host = {
  threadId: () => string;
  deps: () => SearchDeps;
  window: ContextWindow;
  /** Schedules `retryIndex` on the agent in this many seconds (durably: it survives eviction). */
  schedule: (seconds: number) => Promise<void>;
  /** How long since a turn last ran on the thread, its admission included (0 while one runs). */
  quietMs: () => number;
};

/**
 * How long a thread must go without a write and without a turn (from its frame's arrival to its
 * end) before its new messages are indexed, and how long they wait at most while turns follow each
 * other. Indexed in the outbox's transaction, each turn's embedding call and index rows (HNSW
 * insert, term statistics) ran beside the next turn: at 100 threads x 3 turns back to back, 0.85x
 * the bare agent's throughput, 1.02x with no indexing at all (bench/README.md, "Figures after the quiet indexer").
 */
const QUIET_MS = 2_000;
const MAX_WAIT_MS = 30_000;

/**
 * A thread's search index in Postgres, kept off its turns: the outbox writes a batch's messages and
 * queues them for indexing in its transaction (src/db/messages.ts), and once the thread is quiet
 * (QUIET_MS without a write or a turn, or MAX_WAIT_MS after the first queued message) one
 * run indexes what is queued (src/search/message-index.ts: an embedding call and a transaction per
 * 50 messages), with the thread's summaries copied beside its messages. A run that fails is tried
 * again with the outbox's backoff. The queue is in Postgres and a durable schedule backs the timer,
 * so an eviction leaves nothing unindexed. Each indexing transaction moves the owner's message
 * index version itself (migrations/0011), which their cached message searches are keyed by.
 */
export class MessageIndexer {
  #running: Promise<void> | undefined;
  #again = false;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the oldest change not yet indexed was written; undefined: nothing waits (once #known). */
  #since: number | undefined;
  /** This object has written or indexed since it woke (else the queue may hold what an earlier one left). */
  #known = false;
  #backstop = false;

  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /** Applies the outbox's batch (throws as Postgres does: the outbox keeps the batch for its retry). */
  async write(ops: MessageOp[]): Promise<AppliedOps> {
    const applied = await this.host.deps().db((db) => applyMessageOps(db, this.host.threadId(), ops));
    this.#known = true;
    if (applied.queued || this.host.window.unsynced().length) this.#later();
    return applied;
  }

  /** Indexes once the thread is quiet; the durable schedule, once per wait, covers an eviction meanwhile. */
  #later(): void {
    this.#since ??= Date.now();
    if (!this.#backstop) {
      this.#backstop = true;
      this.host.schedule(Math.ceil((MAX_WAIT_MS + QUIET_MS) / 1000)).catch(() => (this.#backstop = false));
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#quiet(), QUIET_MS);
  }

  #quiet(): void {
    this.#timer = undefined;
    const quiet = this.host.quietMs();
    if (this.#since !== undefined && quiet < QUIET_MS && Date.now() - this.#since < MAX_WAIT_MS) this.#timer = setTimeout(() => this.#quiet(), QUIET_MS - quiet);
    else this.kick();
  }

  kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running) return void (this.#again = true);
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Indexes what waits now, and waits for it (tests). */
  flush(): Promise<void> {
    if (this.#timer) this.kick();
    return this.settled();
  }

  /** Waits for the run in progress (a wipe, after `cancel`, must not race it). */
  settled(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /** Drops the wait for quiet: the thread is wiped. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The scheduler's call: a failed run's retry, or the backstop of a wait (nothing to do when the timer or a run has it). */
  retry(): Promise<void> {
    this.#backstop = false;
    if (this.#timer || (this.#known && this.#since === undefined)) return this.settled();
    this.kick();
    return this.settled();
  }

  async #run(): Promise<void> {
    const threadId = this.host.threadId();
    const since = this.#since;
    this.#since = undefined;
    try {
      const summaries = this.host.window.unsynced();
      if (summaries.length) this.host.window.markSynced(await this.host.deps().db((db) => insertSummaries(db, threadId, summaries)));
      await indexThreadMessages(this.host.deps(), threadId);
      this.#known = true;
      this.#attempt = 0;
    } catch (err) {
      this.#since = Math.min(since ?? Date.now(), this.#since ?? Date.now());
      const seconds = Outbox.backoffSeconds(this.#attempt++);
      log("warn", "message_index_failed", { threadId, attempt: this.#attempt, retryInSeconds: seconds, error: describeError(err) });
      await this.host.schedule(seconds).catch(() => {});
    }
  }
}
