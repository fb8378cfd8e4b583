import { indexMessages, pendingMessages } from "../db/message-search.ts";
import { messageText } from "../messages.ts";
import { userScope } from "./cache.ts";
import { chunkText } from "./chunking.ts";
import { embed, invalidate, type SearchDeps } from "./search.ts";

const BATCH = 50;
/** Batches one run indexes at most; the next write or retry goes on from there. */
const MAX_BATCHES = 20;

/** The text of a message, chunked as documents' is: what search indexes of it. */
export const messageChunkTexts = (parts: unknown[]): string[] => chunkText(messageText({ parts: parts as { type: string; text?: unknown }[] }));

/**
 * Indexes a thread's queued messages (queued in the transaction that wrote them to Postgres when
 * their embedding failed, or by a migration: see src/db/messages.ts): their text is chunked as documents' is, embedded, and stored with the owner's
 * BM25 statistics, a batch per transaction; then the owner's cached searches are invalidated.
 * Throws when Postgres or the embedder fails: the queue keeps what was not indexed, for the retry.
 * Answers how many messages it indexed.
 */
export async function indexThreadMessages(deps: SearchDeps, threadId: string): Promise<number> {
  let indexed = 0;
  for (let round = 0; round < MAX_BATCHES; round++) {
    const pending = await deps.db((db) => pendingMessages(db, threadId, BATCH));
    if (!pending.length) return indexed;
    const texts = pending.map((m) => messageChunkTexts(m.parts));
    const vectors = await embed(deps, texts.flat());
    let next = 0;
    const items = pending.map((message, i) => ({ message, chunks: texts[i]!.map((text) => ({ text, embedding: vectors[next++]! })) }));
    await deps.db((db) => indexMessages(db, threadId, items, deps.embedder.name));
    indexed += pending.length;
    for (const owner of new Set(pending.map((m) => m.ownerId))) await invalidate(deps, userScope(owner));
    if (pending.length < BATCH) return indexed;
  }
  return indexed;
}
