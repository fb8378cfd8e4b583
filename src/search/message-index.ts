import { indexMessages, type MessageChunks, pendingMessages } from "../db/message-search.ts";
import { messageText } from "../messages.ts";
import { chunkText } from "./chunking.ts";
import { embed, type SearchDeps } from "./search.ts";

const BATCH = 50;
/** Batches one run indexes at most; the next write or retry goes on from there. */
const MAX_BATCHES = 20;

/** The text of a message, chunked as documents' is: what search indexes of it. */
const messageChunkTexts = (parts: unknown[]): string[] => chunkText(messageText({ parts: parts as { type: string; text?: unknown }[] }));

/** Each message's chunks (by its parts) with their vectors, in one embedder call (none when no message has text). */
async function embedMessages(deps: SearchDeps, parts: unknown[][]): Promise<MessageChunks[]> {
  const texts = parts.map(messageChunkTexts);
  const all = texts.flat();
  const vectors = all.length ? await embed(deps, all) : [];
  let next = 0;
  return texts.map((t) => t.map((text) => ({ text, embedding: vectors[next++]! })));
}

/**
 * Indexes a thread's queued messages (queued in the transaction that wrote them to Postgres when
 * their embedding failed, or by a migration: see src/db/messages.ts): their text is chunked as documents' is, embedded, and stored with the owner's
 * BM25 statistics, a batch per transaction (which moves the owner's index version: cached searches of it are not read again).
 * Throws when Postgres or the embedder fails: the queue keeps what was not indexed, for the retry.
 * Answers how many messages it indexed.
 */
export async function indexThreadMessages(deps: SearchDeps, threadId: string): Promise<number> {
  let indexed = 0;
  for (let round = 0; round < MAX_BATCHES; round++) {
    const pending = await deps.db((db) => pendingMessages(db, threadId, BATCH));
    if (!pending.length) return indexed;
    const chunks = await embedMessages(
      deps,
      pending.map((m) => m.parts),
    );
    const items = pending.map((message, i) => ({ message, chunks: chunks[i]! }));
    await deps.db((db) => indexMessages(db, threadId, items, deps.embedder.name));
    indexed += pending.length;
    if (pending.length < BATCH) return indexed;
  }
  return indexed;
}
