import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { messageTokens } from "../agent/tokens.ts";
import type { Db } from "./client.ts";
import { messageChunks, messageIndexQueue, messages, threadSummaries, threads } from "./schema.ts";

export type StoredMessage = {
  id: string;
  role: "user" | "assistant" | "system";
  parts: unknown[];
  metadata?: unknown;
};

/** One change to a thread's transcript, in the order the thread agent made it. */
export type MessageOp = { op: "upsert"; message: StoredMessage } | { op: "delete"; ids: string[] } | { op: "clear" };

/** The roles whose text search indexes (src/search/message-index.ts): what a person wrote or read. */
export const INDEXED_ROLES = ["user", "assistant"] as const;

/** What applying a batch leaves: the thread's title as Postgres has it, and whether messages wait in its index queue. */
export type AppliedOps = { title: string | null; titleSource: string | null; queued: boolean };

/**
 * Applies a thread's transcript changes in one transaction, in order. Upserts are idempotent by
 * (thread, message id): a replayed op rewrites the same row and keeps its sequence number. Each
 * upsert records its token estimate; those of the roles search indexes are queued for indexing
 * (src/search/message-index.ts), in one statement at the end. A delete or clear takes the messages
 * out of the index and the queue. An op this code does not know (a newer release's, after a rollback) is an error, never a clear.
 */
export async function applyMessageOps(db: Db, threadId: string, ops: MessageOp[]): Promise<AppliedOps> {
  return db.transaction(async (tx) => {
    const queue = new Set<string>();
    for (const change of ops) {
      if (change.op === "upsert") {
        const { id, role, parts, metadata } = change.message;
        const row = { role, parts, metadata: metadata ?? null, tokenEstimate: messageTokens({ parts }), ...usageColumns(role, metadata) };
        await tx
          .insert(messages)
          .values({ threadId, id, ...row })
          .onConflictDoUpdate({ target: [messages.threadId, messages.id], set: row });
        if ((INDEXED_ROLES as readonly string[]).includes(role)) queue.add(id);
      } else if (change.op === "delete") {
        if (!change.ids.length) continue;
        // Messages first: their row locks wait for an indexing run holding them, whose chunks the next statement then sees.
        await tx.delete(messages).where(and(eq(messages.threadId, threadId), inArray(messages.id, change.ids)));
        for (const table of [messageChunks, messageIndexQueue]) await tx.delete(table).where(and(eq(table.threadId, threadId), inArray(table.messageId, change.ids)));
        for (const id of change.ids) queue.delete(id);
      } else if (change.op === "clear") {
        await tx.delete(messages).where(eq(messages.threadId, threadId));
        for (const table of [messageChunks, messageIndexQueue, threadSummaries]) await tx.delete(table).where(eq(table.threadId, threadId));
        queue.clear();
      } else {
        throw new Error(`unknown outbox op ${JSON.stringify((change as { op: unknown }).op)}`);
      }
    }
    if (queue.size)
      await tx
        .insert(messageIndexQueue)
        .values([...queue].map((messageId) => ({ threadId, messageId })))
        .onConflictDoUpdate({ target: [messageIndexQueue.threadId, messageIndexQueue.messageId], set: { queuedAt: sql`clock_timestamp()` } });
    const { rows } = await tx.execute<{ title: string | null; title_source: string | null; queued: boolean }>(sql`
      update ${threads} set updated_at = now() where id = ${threadId}::uuid
      returning title, title_source, exists (select 1 from ${messageIndexQueue} q where q.thread_id = ${threadId}::uuid) as queued`);
    const t = rows[0];
    return { title: t?.title ?? null, titleSource: t?.title_source ?? null, queued: Boolean(t?.queued) };
  });
}

export type MessagePage = {
  messages: (StoredMessage & { createdAt: Date })[];
  /** Pass back as `cursor` for the page of older messages; null on the oldest page. */
  nextCursor: string | null;
};

/** The newest `limit` messages before `cursor`, oldest first. */
export async function listMessages(db: Db, threadId: string, opts: { limit: number; cursor?: number }): Promise<MessagePage> {
  const where = opts.cursor === undefined ? eq(messages.threadId, threadId) : and(eq(messages.threadId, threadId), lt(messages.seq, opts.cursor));
  const rows = await db
    .select({ id: messages.id, role: messages.role, parts: messages.parts, metadata: messages.metadata, createdAt: messages.createdAt, seq: messages.seq })
    .from(messages)
    .where(where)
    .orderBy(desc(messages.seq))
    .limit(opts.limit + 1);
  const more = rows.length > opts.limit;
  const page = rows.slice(0, opts.limit).reverse();
  return {
    messages: page.map(({ seq: _seq, ...m }) => ({ ...m, role: m.role as StoredMessage["role"], parts: m.parts as unknown[], metadata: m.metadata ?? undefined })),
    nextCursor: more && page[0] ? String(page[0].seq) : null,
  };
}

/** The model and token counts an assistant message's metadata records, as columns for usage totals. */
function usageColumns(role: string, metadata: unknown) {
  const m = role === "assistant" ? (metadata as { model?: unknown; usage?: { inputTokens?: unknown; outputTokens?: unknown } } | undefined) : undefined;
  const int = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? Math.round(v) : null);
  return { model: typeof m?.model === "string" ? m.model : null, inputTokens: int(m?.usage?.inputTokens), outputTokens: int(m?.usage?.outputTokens) };
}

export type SummaryRecord = { id: string; throughId: string; count: number; text: string; model: string; tokens: number; createdAt: number };

/**
 * Stores a thread agent's summaries beside the messages, each once its last message is in Postgres
 * (the outbox writes messages in order, summaries follow). The seq range is the thread's messages
 * from its first through the summary's last one. Idempotent; answers the ids now stored.
 */
export async function insertSummaries(db: Db, threadId: string, rows: SummaryRecord[]): Promise<string[]> {
  const stored: string[] = [];
  for (const r of rows) {
    const { rows: done } = await db.execute<{ id: string }>(sql`
      insert into ${threadSummaries} (thread_id, id, through_message_id, from_seq, to_seq, message_count, text, model, token_estimate, created_at)
      select ${threadId}::uuid, ${r.id}, ${r.throughId}, (select min(seq) from ${messages} where thread_id = ${threadId}::uuid), m.seq,
        ${r.count}, ${r.text}, ${r.model}, ${r.tokens}, ${new Date(r.createdAt).toISOString()}::timestamptz
      from ${messages} m where m.thread_id = ${threadId}::uuid and m.id = ${r.throughId}
      on conflict (thread_id, id) do update set id = excluded.id
      returning id`);
    stored.push(...done.map((d) => d.id));
  }
  return stored;
}

export async function listSummaries(db: Db, threadId: string) {
  return db.select().from(threadSummaries).where(eq(threadSummaries.threadId, threadId)).orderBy(threadSummaries.createdAt);
}
