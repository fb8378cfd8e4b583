import type { SessionChangeEvent } from "agents/sessions";
import type { MessageOp, StoredMessage } from "../db/messages.ts";
import { toAppError } from "../errors.ts";
import { describeError, log } from "../observability/log.ts";
import { isRejectedRow } from "../resilience.ts";
import { toStorable } from "../validation/storable.ts";

const BATCH = 100;
/** Retry backoff: 1 s doubling to 5 min, jittered to between half and all of it. */
const RETRY_BASE_SECONDS = 1;
const RETRY_MAX_SECONDS = 300;

export type OutboxState = { backlog: number; oldestAt: number | null; quarantined: number; attempt: number; nextRetryAt: number | null };
export type QuarantinedOp = { seq: number; op: MessageOp; error: string; createdAt: number; quarantinedAt: number };

/**
 * The thread agent's queue of transcript changes not yet in Postgres, kept in the agent's own
 * SQLite so a change survives a Postgres outage or an eviction. It records every durable write of
 * the chat session, in order, and drains oldest first; Postgres applies each batch idempotently. A
 * change Postgres refuses for good (isRejectedRow) moves to a quarantine with its error, so the
 * changes after it still land; the retry attempt and its time are stored too, so backoff survives
 * eviction. Its tables are created and upgraded by ./storage-schema, which the agent runs first.
 */
export class Outbox {
  #flushing: Promise<void> | undefined;
  /** The last row a flush asked for (seqs only grow; a requeued row keeps its old one). */
  #wanted = 0;

  private readonly sql: SqlStorage;
  private readonly write: (ops: MessageOp[]) => Promise<void>;
  private readonly threadId: () => string;
  constructor(sql: SqlStorage, write: (ops: MessageOp[]) => Promise<void>, threadId: () => string) {
    this.sql = sql;
    this.write = write;
    this.threadId = threadId;
  }

  /** Called synchronously from the session change feed, so the row commits with the write it mirrors. */
  record(event: SessionChangeEvent): void {
    const op = toOp(event);
    if (op) this.sql.exec("INSERT INTO tl_outbox (op, created_at) VALUES (?, ?)", JSON.stringify(op), Date.now());
  }

  get backlog(): number {
    return Number(this.sql.exec("SELECT count(*) AS n FROM tl_outbox").one().n);
  }

  /** When the oldest change still waiting was recorded (ms since the epoch), or null. */
  get oldestAt(): number | null {
    const row = this.sql.exec<{ at: number | null }>("SELECT min(created_at) AS at FROM tl_outbox").one();
    return row.at === null ? null : Number(row.at);
  }

  get quarantinedCount(): number {
    return Number(this.sql.exec("SELECT count(*) AS n FROM tl_quarantine").one().n);
  }

  get state(): OutboxState {
    const retry = this.sql.exec<{ attempt: number; next_at: number | null }>("SELECT attempt, next_at FROM tl_outbox_retry WHERE id = 1").toArray()[0];
    return { backlog: this.backlog, oldestAt: this.oldestAt, quarantined: this.quarantinedCount, attempt: retry?.attempt ?? 0, nextRetryAt: retry?.next_at ?? null };
  }

  /**
   * Drains what the outbox holds when it is called, one drain at a time; rejects with a transient
   * write error, keeping the rows that did not land. A flush asked for during a drain extends it to
   * what was recorded by then: a row recorded later waits for its own flush (so the next turn's
   * message, recorded while the last turn's batch is in flight, goes with its own turn's reply: one
   * transaction a turn, where it took two). Never throws: an outbox whose storage is gone (the thread
   * was deleted as a read's drain reached it) rejects.
   */
  async flush(): Promise<void> {
    this.#wanted = Math.max(this.#wanted, this.#lastSeq());
    this.#flushing ??= this.#drainWanted().finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  async #drainWanted(): Promise<void> {
    for (let upTo = 0; upTo !== this.#wanted; ) await this.#drain((upTo = this.#wanted));
  }

  #lastSeq(): number {
    return Number(this.sql.exec<{ seq: number | null }>("SELECT max(seq) AS seq FROM tl_outbox").one().seq ?? 0);
  }

  /** Forgets every pending change: for a thread that no longer exists in Postgres. */
  discard(): void {
    this.sql.exec("DELETE FROM tl_outbox");
    this.sql.exec("DELETE FROM tl_quarantine");
    this.setRetry(0, null);
  }

  /** A failed drain: the next attempt's number and when it is due, or (success) back to none. */
  setRetry(attempt: number, nextAt: number | null): void {
    this.sql.exec(
      "INSERT INTO tl_outbox_retry (id, attempt, next_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET attempt = excluded.attempt, next_at = excluded.next_at",
      attempt,
      nextAt,
    );
  }

  /** Seconds until the retry after `attempt` failed drains: jittered exponential backoff. */
  static backoffSeconds(attempt: number, random = Math.random()): number {
    return Math.max(1, Math.round(Math.min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** attempt) * (0.5 + random / 2)));
  }

  quarantined(): QuarantinedOp[] {
    return this.sql
      .exec<{ seq: number; op: string; error: string; created_at: number; quarantined_at: number }>(
        "SELECT seq, op, error, created_at, quarantined_at FROM tl_quarantine ORDER BY seq",
      )
      .toArray()
      .map((r) => ({ seq: r.seq, op: JSON.parse(r.op) as MessageOp, error: r.error, createdAt: r.created_at, quarantinedAt: r.quarantined_at }));
  }

  /** Puts a quarantined change back in its place in the outbox (its own seq), to be tried again. */
  requeue(seq: number): boolean {
    const row = this.sql.exec<{ op: string; created_at: number }>("SELECT op, created_at FROM tl_quarantine WHERE seq = ?", seq).toArray()[0];
    if (!row) return false;
    this.sql.exec("INSERT INTO tl_outbox (seq, op, created_at) VALUES (?, ?, ?)", seq, row.op, row.created_at);
    this.sql.exec("DELETE FROM tl_quarantine WHERE seq = ?", seq);
    return true;
  }

  drop(seq: number): boolean {
    return this.sql.exec("DELETE FROM tl_quarantine WHERE seq = ?", seq).rowsWritten > 0;
  }

  async #drain(upTo: number): Promise<void> {
    for (;;) {
      const rows = this.sql
        .exec<{ seq: number; op: string; created_at: number }>("SELECT seq, op, created_at FROM tl_outbox WHERE seq <= ? ORDER BY seq LIMIT ?", upTo, BATCH)
        .toArray();
      if (!rows.length) return;
      try {
        await this.write(rows.map((r) => JSON.parse(r.op) as MessageOp));
        this.sql.exec("DELETE FROM tl_outbox WHERE seq <= ?", rows.at(-1)!.seq);
      } catch (err) {
        if (!isRejectedRow(err)) throw err;
        // One change in the batch is refused for good: apply them one by one to find it.
        for (const r of rows) {
          try {
            await this.write([JSON.parse(r.op) as MessageOp]);
          } catch (e) {
            if (!isRejectedRow(e)) throw e;
            this.#quarantine(r, e);
            continue;
          }
          this.sql.exec("DELETE FROM tl_outbox WHERE seq = ?", r.seq);
        }
      }
    }
  }

  #quarantine(r: { seq: number; op: string; created_at: number }, err: unknown) {
    const error = describeError(err).slice(0, 1000);
    this.sql.exec("INSERT OR REPLACE INTO tl_quarantine (seq, op, created_at, error, quarantined_at) VALUES (?, ?, ?, ?, ?)", r.seq, r.op, r.created_at, error, Date.now());
    this.sql.exec("DELETE FROM tl_outbox WHERE seq = ?", r.seq);
    // Logged once, here; it then shows in the thread's status, /health and the admin stats until retried or dropped.
    log("error", "outbox_row_quarantined", { threadId: this.threadId(), seq: r.seq, op: (JSON.parse(r.op) as MessageOp).op, code: toAppError(err).code, error });
  }
}

function toOp(event: SessionChangeEvent): MessageOp | undefined {
  switch (event.type) {
    case "append":
    case "update":
    case "import":
      return { op: "upsert", message: toStored(event.message) };
    case "delete":
      return { op: "delete", ids: event.messageIds };
    case "clear":
      return { op: "clear" };
    default:
      return undefined;
  }
}

/** Model and tool output can hold text Postgres refuses (NUL, a lone surrogate): made storable here, the last step before Postgres. */
function toStored(m: { id: string; role: string; parts: unknown[]; metadata?: unknown }): StoredMessage {
  return toStorable({ id: m.id, role: m.role as StoredMessage["role"], parts: m.parts, ...(m.metadata !== undefined && { metadata: m.metadata }) });
}
