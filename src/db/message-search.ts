import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { rankedChunks, type ChunkQuery, type Corpus } from "./documents.ts";
import { messageChunks, messageCorpus as corpusTable, messageIndexQueue, messages, threads } from "./schema.ts";

/**
 * The version of an owner's message index (migrations/0011: it moves in the transaction that changes
 * the index, and never comes back). Undefined while nothing is indexed: that state recurs (after a
 * clear), so nothing may be cached under it (a search that read it may have seen an index written just after).
 */
export async function messageIndexVersion(db: Db, ownerId: string): Promise<number | undefined> {
  const [row] = await db.select({ version: corpusTable.version }).from(corpusTable).where(eq(corpusTable.ownerId, ownerId));
  return row?.version;
}

/** A queued message, with what indexing needs: its text parts, owner and time. `queuedAt` is Postgres's own text, to match the row exactly. */
export type PendingMessage = { threadId: string; messageId: string; ownerId: string; role: string; parts: unknown[]; createdAt: Date; queuedAt: string };

/** The oldest queued messages of a thread (a message deleted meanwhile took its queue row with it). */
export async function pendingMessages(db: Db, threadId: string, limit: number): Promise<PendingMessage[]> {
  const { rows } = await db.execute<{ message_id: string; owner_id: string; role: string; parts: unknown[]; created_at: string; queued_at: string }>(sql`
    select q.message_id, t.user_id as owner_id, m.role, m.parts, m.created_at, q.queued_at::text as queued_at
    from message_index_queue q join messages m on m.thread_id = q.thread_id and m.id = q.message_id join threads t on t.id = q.thread_id
    where q.thread_id = ${threadId}::uuid order by q.queued_at limit ${limit}`);
  return rows.map((r) => ({ threadId, messageId: r.message_id, ownerId: r.owner_id, role: r.role, parts: r.parts, createdAt: new Date(r.created_at), queuedAt: r.queued_at }));
}

/** A message's indexed chunks, embedded before the transaction that writes them (src/search/message-index.ts). */
export type MessageChunks = { text: string; embedding: number[] }[];
export type IndexedMessage = { message: PendingMessage; chunks: MessageChunks };

type ChunkRow = typeof messageChunks.$inferInsert;
/** The `message_chunks` rows of one message. */
const chunkRows = (m: { threadId: string; messageId: string; ownerId: string; role: string; createdAt: Date }, chunks: MessageChunks, embedder: string): ChunkRow[] =>
  chunks.map((c, position) => ({
    threadId: m.threadId,
    messageId: m.messageId,
    ownerId: m.ownerId,
    role: m.role,
    position,
    text: c.text,
    embedding: c.embedding,
    embedder,
    messageCreatedAt: m.createdAt,
  }));

/** Inserts chunk rows, 500 a statement (each statement runs the statistics triggers once). */
async function insertChunkRows(tx: Pick<Db, "insert">, rows: ChunkRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) await tx.insert(messageChunks).values(rows.slice(i, i + 500));
}

/**
 * Replaces the indexed chunks of these messages in one transaction and takes them off the queue,
 * unless they were queued again meanwhile (changed after they were read: indexed again next time).
 * A message deleted since it was read is skipped: its rows (and its thread's) are locked first, so none can go mid-way.
 */
export async function indexMessages(db: Db, threadId: string, items: IndexedMessage[], embedder: string): Promise<void> {
  if (!items.length) return;
  const ids = items.map((i) => i.message.messageId);
  await db.transaction(async (tx) => {
    // The thread's row first, as a deletion of the thread (or its user) takes it before its messages:
    // locked the other way round, the chunks' foreign key waited on a deletion that waited on us (a deadlock).
    const [thread] = await tx.select({ id: threads.id }).from(threads).where(eq(threads.id, threadId)).for("key share");
    if (!thread) return;
    const alive = new Set(
      (
        await tx
          .select({ id: messages.id })
          .from(messages)
          .where(and(eq(messages.threadId, threadId), inArray(messages.id, ids)))
          .for("key share")
      ).map((r) => r.id),
    );
    // Only messages indexed before have chunks to replace: a statement on message_chunks runs its statistics triggers even when it touches no row.
    const before = await tx
      .selectDistinct({ id: messageChunks.messageId })
      .from(messageChunks)
      .where(and(eq(messageChunks.threadId, threadId), inArray(messageChunks.messageId, ids)));
    if (before.length)
      await tx.delete(messageChunks).where(
        and(
          eq(messageChunks.threadId, threadId),
          inArray(
            messageChunks.messageId,
            before.map((r) => r.id),
          ),
        ),
      );
    await insertChunkRows(
      tx,
      items.filter((i) => alive.has(i.message.messageId)).flatMap(({ message, chunks }) => chunkRows(message, chunks, embedder)),
    );
    const done = sql.join(
      items.map((i) => sql`(${i.message.messageId}, ${i.message.queuedAt}::timestamptz)`),
      sql`, `,
    );
    await tx.execute(sql`delete from ${messageIndexQueue} where thread_id = ${threadId}::uuid and (message_id, queued_at) in (${done})`);
  });
}

/**
 * Up to this many message chunks, a user's vectors are all compared (about 5 µs each at 100k indexed
 * messages: 25 ms for 5,000); past it, HNSW. A small owner is a very selective filter on the shared
 * graph: at 100k messages, users of ~200 messages got recall@5 0.83 on the same-words queries from
 * HNSW with iterative scans, 1.00 exactly (bench/README.md, "Search across conversations").
 */
const EXACT_VECTORS_BELOW = 5000;

/** A user's message text: their own statistics and postings only; nobody else's message is ever a candidate. */
export function messageCorpus(ownerId: string): Corpus {
  return {
    stats: sql`select chunks::float8 as n, greatest(tokens::float8 / greatest(chunks, 1), 1) as avgdl from message_corpus where owner_id = ${ownerId}::uuid`,
    terms: sql`message_terms t`,
    termsWhere: sql`t.owner_id = ${ownerId}::uuid`,
    postings: sql`message_postings`,
    postingsWhere: (a) => sql`${sql.raw(a)}.owner_id = ${ownerId}::uuid`,
    chunks: sql`message_chunks`,
    chunksWhere: (a) => sql`${sql.raw(a)}.owner_id = ${ownerId}::uuid`,
    exact: sql`((select coalesce(max(chunks), 0) from message_corpus where owner_id = ${ownerId}::uuid) <= ${EXACT_VECTORS_BELOW})`,
  };
}

export type MessageChunkHit = { threadId: string; threadTitle: string | null; messageId: string; role: string; createdAt: Date; text: string; score: number };

/** Messages of one owner, best first, each at most once (at its best chunk). */
export async function searchMessageChunks(db: Db, q: Omit<ChunkQuery, "scope"> & { ownerId: string }): Promise<MessageChunkHit[]> {
  const { rows } = await db.execute<{ thread_id: string; title: string | null; message_id: string; role: string; created_at: string; text: string; score: number }>(sql`
    ${rankedChunks({ ...q, scope: { ownerId: q.ownerId } }, messageCorpus(q.ownerId), q.limit * 3)}
    select d.thread_id, t.title, d.message_id, d.role, d.message_created_at as created_at, d.text, d.score from (
      select distinct on (c.thread_id, c.message_id) c.id, c.thread_id, c.message_id, c.role, c.message_created_at, c.text, top.score::float8 as score
      from top join message_chunks c on c.id = top.id order by c.thread_id, c.message_id, top.score desc
    ) d join threads t on t.id = d.thread_id order by d.score desc, d.id limit ${q.limit}`);
  return rows.map((r) => ({
    threadId: r.thread_id,
    threadTitle: r.title,
    messageId: r.message_id,
    role: r.role,
    createdAt: new Date(r.created_at),
    text: r.text,
    score: Number(r.score),
  }));
}
