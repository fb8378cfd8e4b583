import type { SessionChangeEvent } from "agents/sessions";
import type { MessageOp, StoredMessage } from "../db/messages";

const BATCH = 100;

/**
 * The thread agent's queue of transcript changes not yet in Postgres, kept in the agent's own
 * SQLite so a change survives a Postgres outage or an eviction. It records every durable write of
 * the chat session, in order, and drains oldest first; Postgres applies each batch idempotently.
 * Its table, tl_outbox, is created and upgraded by ./storage-schema, which the agent runs first.
 */
export class Outbox {
  #flushing: Promise<void> | undefined;

  constructor(
    private readonly sql: SqlStorage,
    private readonly write: (ops: MessageOp[]) => Promise<void>,
  ) {}

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

  /** Drains the outbox, one drain at a time; rejects with the write's error, keeping the rows that did not land. */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  /** Forgets every pending change: for a thread that no longer exists in Postgres. */
  discard(): void {
    this.sql.exec("DELETE FROM tl_outbox");
  }

  async #drain(): Promise<void> {
    for (;;) {
      const rows = this.sql.exec<{ seq: number; op: string }>("SELECT seq, op FROM tl_outbox ORDER BY seq LIMIT ?", BATCH).toArray();
      if (!rows.length) return;
      await this.write(rows.map((r) => JSON.parse(r.op) as MessageOp));
      this.sql.exec("DELETE FROM tl_outbox WHERE seq <= ?", rows.at(-1)!.seq);
    }
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

function toStored(m: { id: string; role: string; parts: unknown[]; metadata?: unknown }): StoredMessage {
  return { id: m.id, role: m.role as StoredMessage["role"], parts: m.parts, ...(m.metadata !== undefined && { metadata: m.metadata }) };
}
