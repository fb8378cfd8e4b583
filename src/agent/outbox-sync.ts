import type { SessionChangeEvent } from "agents/sessions";
import { toAppError } from "../errors.ts";
import { log } from "../observability/log.ts";
import { metrics } from "../observability/metrics.ts";
import { outboxMonitor, type ThreadBacklog } from "../observability/outbox-monitor.ts";
import { Outbox } from "./outbox.ts";

type Host = { env: Env; threadId: () => string; schedule: (seconds: number) => Promise<void> };

/**
 * While a turn runs, its writes wait and go to Postgres together when it ends (one transaction for
 * the user message and the reply, where each write alone took a connection and a transaction of its
 * own: bench/README.md, "Turns"); a turn longer than this flushes what it has so far (at 5 s, every
 * turn at 100 threads took two transactions: they last 9 s there). The writes are durable in the
 * outbox meanwhile, and the API's reads drain it first.
 */
const HOLD_MAX_MS = 30_000;
/**
 * After a turn, the writes wait this long for the thread to pause: a turn begun meanwhile (a client
 * sending back to back) takes them into its own batch, one connection and transaction for both. A
 * flush at each turn's end ran beside the next turn's start: at 20 threads its first chunk was 1.8x
 * to 2.3x the bare agent's, 1.0x with the pause (bench/README.md, "Figures without wrangler's local
 * trace store").
 */
const PAUSE_MS = 150;
/** ...unless the oldest of them is this old by a turn's end: then they go at once. */
const LAG_MAX_MS = 5_000;

/**
 * Keeps a thread's outbox draining to Postgres: drains now, and on failure schedules the next try
 * with the backoff of its stored attempt (so an eviction does not start over at one second). Every
 * change of the backlog, and every failed try, is reported to the service-wide monitor.
 */
export class OutboxSync {
  #reported: string | undefined;
  #holds = 0;
  #lastTurnAt = 0;
  #waiting = false;
  /** When the first of the writes now waiting was recorded. */
  #waitingSince = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Off while loading history from Postgres, which must not be written back to it. */
  #mirroring = true;

  private readonly outbox: Outbox;
  private readonly host: Host;
  constructor(outbox: Outbox, host: Host) {
    this.outbox = outbox;
    this.host = host;
  }

  /** On waking: a backlog due for its try drains now (one already scheduled keeps its backoff). True when nothing waits. */
  async wake(): Promise<boolean> {
    const { backlog, nextRetryAt } = this.outbox.state;
    if (backlog > 0 && (nextRetryAt === null || nextRetryAt <= Date.now())) await this.flush();
    return backlog === 0;
  }

  /** A durable write of the chat session, into the outbox (false while not mirroring). */
  record(event: SessionChangeEvent): boolean {
    if (!this.#mirroring) return false;
    this.outbox.record(event);
    // Deferred: the feed may dispatch inside the session's own write. Not awaited: Postgres is off the turn's path.
    queueMicrotask(() => this.request());
    return true;
  }

  /** Writes made by `write` are not mirrored to Postgres (they came from it). */
  async unmirrored(write: () => Promise<void>): Promise<void> {
    this.#mirroring = false;
    try {
      await write();
    } finally {
      this.#mirroring = true;
    }
  }

  /** How long since a turn last ran here (0 while one runs). */
  quietMs(): number {
    return this.#holds ? 0 : Date.now() - this.#lastTurnAt;
  }

  /** A write was recorded: drain now, or when the turns in flight end. */
  request(): void {
    if (!this.#holds) return void this.#background();
    if (!this.#waiting) this.#waitingSince = Date.now();
    this.#waiting = true;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      if (this.#waiting) this.#background();
    }, HOLD_MAX_MS);
  }

  /** Around a turn: writes recorded meanwhile are drained together when the last turn in flight ends. */
  async during<T>(turn: () => Promise<T>): Promise<T> {
    this.#holds++;
    this.#lastTurnAt = Date.now();
    try {
      return await turn();
    } finally {
      this.#lastTurnAt = Date.now();
      if (--this.#holds === 0 && this.#waiting) this.#afterTurn();
    }
  }

  /** The last turn in flight ended with writes waiting: they go once the thread pauses, or now when they have waited long. */
  #afterTurn(): void {
    if (Date.now() - this.#waitingSince >= LAG_MAX_MS) return void this.#background();
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#waiting) return;
      // A turn begun meanwhile takes them along; its end decides again (and the hold cap stands meanwhile).
      if (this.#holds) this.request();
      else this.#background();
    }, PAUSE_MS);
  }

  /** A flush nothing waits for; one whose failure cannot even be recorded (the thread's storage deleted under it) is dropped. */
  #background(): void {
    this.flush().catch(() => {});
  }

  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiting = false;
    try {
      await this.outbox.flush();
      if (this.outbox.state.attempt) this.outbox.setRetry(0, null);
      await this.report();
    } catch (err) {
      const error = toAppError(err);
      if (error.code === "thread_not_found") {
        // The thread was deleted in Postgres: its messages would be cascaded away anyway.
        this.outbox.discard();
        return this.report();
      }
      const { attempt, nextRetryAt } = this.outbox.state;
      log("warn", "outbox_flush_failed", { threadId: this.host.threadId(), code: error.code, backlog: this.outbox.backlog, attempt: attempt + 1 });
      // A try already scheduled stays as it is: a new write does not pull the backoff forward or push it back.
      if (nextRetryAt === null || nextRetryAt <= Date.now()) {
        const seconds = Outbox.backoffSeconds(attempt);
        this.outbox.setRetry(attempt + 1, Date.now() + seconds * 1000);
        await this.host.schedule(seconds);
      } else this.outbox.setRetry(attempt + 1, nextRetryAt);
      await this.report(true);
    }
  }

  /** Forgets a wait for the thread to pause (its storage is about to go: the thread was deleted). */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiting = false;
  }

  /** Drains now, within `timeoutMs`: a read of Postgres after it sees every change made here (read-your-writes). */
  async drain(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.outbox.flush().catch(() => {}), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]).finally(() => clearTimeout(timer));
  }

  /** The admin's call on a quarantined change: try it again (`retry`) or give it up (`drop`). */
  async resolve(seq: number, action: "retry" | "drop"): Promise<boolean> {
    const done = action === "retry" ? this.outbox.requeue(seq) : this.outbox.drop(seq);
    log("info", "outbox_quarantine_resolved", { threadId: this.host.threadId(), seq, action, found: done });
    if (done) await this.flush();
    return done;
  }

  /** What this thread has not yet written to Postgres, and what Postgres refused. */
  state() {
    const { backlog, oldestAt, quarantined, attempt, nextRetryAt } = this.outbox.state;
    return { backlog, oldestAt, quarantined, retryAttempt: attempt, nextRetryAt };
  }

  /** The scheduled try: it is due, so it no longer holds back the next one. */
  retry(): Promise<void> {
    const { attempt } = this.outbox.state;
    this.outbox.setRetry(attempt, null);
    return this.flush();
  }

  /** Tells the monitor (read by /health) this thread's state: on a change, or always after a failed try. */
  async report(always = false): Promise<void> {
    const { backlog, oldestAt, quarantined, attempt, nextRetryAt } = this.outbox.state;
    const state: ThreadBacklog = { backlog, quarantined, oldestAt, attempt, nextRetryAt };
    const key = `${backlog}/${quarantined}/${attempt > 0}`;
    if (!always && key === (this.#reported ?? "0/0/false")) return;
    metrics(this.host.env).write({ kind: "outbox", threadId: this.host.threadId(), backlog });
    await outboxMonitor(this.host.env)
      .report(this.host.threadId(), state)
      .then(() => (this.#reported = key))
      .catch(() => {});
  }
}
