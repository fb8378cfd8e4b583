import type { Config } from "../config.ts";
import type { Db } from "../db/client.ts";
import { checkQuota, deleteDocument, footprint, insertDocuments, searchChunks, type ChunkHit, type Quota, type Scope, type SearchMode } from "../db/documents.ts";
import { messageIndexVersion, searchMessageChunks } from "../db/message-search.ts";
import type { DocumentRow } from "../db/schema.ts";
import { AppError, toAppError } from "../errors.ts";
import { describeError, log } from "../observability/log.ts";
import { cacheKey, GLOBAL_SCOPE, kvCacheVersions, normalizeQuery, userScope, type Cache, type CacheVersions } from "./cache.ts";
import { chunkText } from "./chunking.ts";
import type { Embedder } from "./embeddings.ts";
import { withRetry, withTimeout } from "../resilience.ts";
import { snippet } from "./snippet.ts";

/** What search and ingestion need, so the same code runs in the Worker (Hyperdrive, KV) and in Node (bench). */
export type SearchDeps = {
  db: <T>(fn: (db: Db) => Promise<T>) => Promise<T>;
  cache?: Cache;
  /** Where each scope's cache version lives; without it, in `cache` (Node). */
  versions?: CacheVersions;
  embedder: Embedder;
  config: Config;
  /** Runs work the answer need not wait for (a cache write); without it, the answer waits. */
  background?: (work: Promise<unknown>) => void;
};

/** What a search looks in: documents (the default, and all the agent's tool searches), the caller's messages, or both. */
export type SearchCorpus = "documents" | "messages" | "all";
export type SearchRequest = { query: string; mode: SearchMode; limit: number; scope: Scope };
export type SearchResponse = { results: ChunkHit[]; cached: boolean; mode: SearchMode };

export type DocumentResult = ChunkHit & { type: "document" };
export type MessageResult = {
  type: "message";
  threadId: string;
  threadTitle: string | null;
  messageId: string;
  role: string;
  createdAt: string;
  snippet: string;
  highlights: [number, number][];
  score: number;
};
export type SearchResult = DocumentResult | MessageResult;

const RETRY = { baseDelayMs: 50, maxDelayMs: 1000 };

/** Postgres with transient faults retried and the whole attempt bounded in time; failure is search_unavailable. */
async function resilient<T>(deps: SearchDeps, fn: (db: Db) => Promise<T>): Promise<T> {
  try {
    const attempt = withRetry(() => deps.db(fn), { ...RETRY, retries: deps.config.SEARCH_RETRIES });
    return await withTimeout(attempt, deps.config.SEARCH_TIMEOUT_MS, () => new AppError("search_unavailable", `search timed out after ${deps.config.SEARCH_TIMEOUT_MS} ms`));
  } catch (err) {
    const error = toAppError(err);
    if (error.code === "search_unavailable" || error.code === "database_unavailable")
      throw new AppError("search_unavailable", "search is unavailable: the database could not be reached", { cause: err });
    throw error;
  }
}

// A broken cache must never break search: its failures only cost the cache's benefit.
const quietly = <T>(p: Promise<T>) => p.catch(() => undefined);

/** The embedding model is a remote service like the database: its failure makes search unavailable, not broken. */
export async function embed(deps: SearchDeps, texts: string[]) {
  try {
    return await deps.embedder.embed(texts);
  } catch (err) {
    throw new AppError("search_unavailable", "the embedding model could not be reached", { cause: err });
  }
}

const versionsOf = (deps: SearchDeps) => deps.versions ?? (deps.cache && kvCacheVersions(deps.cache));

/**
 * The versions of what a search reads, which key its cache entry: of the global documents and the
 * owner's (`versions`), and of the owner's messages (their index's own, in Postgres). Each version
 * must never come back once it has moved on (a search may see data written after it read them);
 * an owner with no indexed messages has none, and such a search is not cached (undefined).
 */
async function versionsRead(deps: SearchDeps, versions: CacheVersions, corpus: SearchCorpus, { ownerId }: Scope): Promise<string[] | undefined> {
  const documents = corpus === "messages" ? [] : [GLOBAL_SCOPE, ...(ownerId ? [userScope(ownerId)] : [])];
  const readsMessages = corpus !== "documents" && ownerId !== null;
  const [read, messages] = await Promise.all([Promise.all(documents.map((s) => versions.read(s))), readsMessages ? deps.db((db) => messageIndexVersion(db, ownerId)) : undefined]);
  if (!readsMessages) return read;
  return messages === undefined ? undefined : [...read, `messages.${messages}`];
}

/**
 * Tells the cache a scope changed, after the change committed. Never throws: a change that is
 * stored must not fail because the cache could not be told (its entries then expire on their TTL).
 */
export async function invalidate(deps: SearchDeps, scope: string): Promise<void> {
  try {
    await versionsOf(deps)?.bump(scope);
  } catch (err) {
    log("warn", "search_cache_invalidation_failed", { scope, error: describeError(err) });
  }
}

/**
 * Cache writes in flight in this isolate, by key. With `background` the answer does not wait for
 * its write (a KV put: 43 ms p50 of a tool step at 20 threads in bench:turns); a search of the same
 * key here waits for it instead, so it still finds what was just computed.
 */
const writing = new Map<string, Promise<unknown>>();

/** The cached answer for this request, or the computed one (then cached). */
async function cached<T>(deps: SearchDeps, req: SearchRequest & { corpus: SearchCorpus; query: string }, compute: () => Promise<T>): Promise<{ value: T; cached: boolean }> {
  const { cache } = deps;
  const versions = versionsOf(deps);
  const read = cache && versions && (await quietly(versionsRead(deps, versions, req.corpus, req.scope)));
  const key = read && (await cacheKey({ versions: read, scope: req.scope.ownerId ?? "global", corpus: req.corpus, mode: req.mode, limit: req.limit, query: req.query }));
  if (cache && key) {
    await writing.get(key);
    const hit = await quietly(cache.get<T>(key, "json"));
    if (hit) return { value: hit, cached: true };
  }
  const value = await compute();
  if (cache && key) {
    const write = quietly(cache.put(key, JSON.stringify(value), { expirationTtl: deps.config.SEARCH_CACHE_TTL_SECONDS })).finally(() => writing.delete(key));
    writing.set(key, write);
    if (deps.background) deps.background(write);
    else await write;
  }
  return { value, cached: false };
}

const chunkQuery = (deps: SearchDeps, req: SearchRequest, text: string, vector: number[] | undefined) => ({
  mode: req.mode,
  text,
  vector,
  embedder: deps.embedder.name,
  scope: req.scope,
  limit: req.limit,
  candidates: Math.max(req.limit, deps.config.SEARCH_CANDIDATES),
  vectorWeight: deps.embedder.fusionWeight,
});

const queryVector = async (deps: SearchDeps, req: SearchRequest, query: string) => (req.mode === "lexical" ? undefined : (await embed(deps, [query]))[0]);

/** The documents search, behind the agent's tool (and `scope=documents` of the HTTP route). */
export async function search(deps: SearchDeps, req: SearchRequest): Promise<SearchResponse> {
  const query = normalizeQuery(req.query);
  const { value, cached: hit } = await cached(deps, { ...req, corpus: "documents", query }, async () => {
    const vector = await queryVector(deps, req, query);
    return resilient(deps, (db) => searchChunks(db, chunkQuery(deps, req, query, vector)));
  });
  return { results: value, cached: hit, mode: req.mode };
}

/**
 * Documents, the caller's messages, or both, ranked together (each corpus's scores are scaled to
 * its best hit, so the lists interleave by how well each matched). A message result carries its
 * thread, id, role and time and a snippet with the query's words highlighted. The admin has no
 * messages: their message search is empty.
 */
export async function searchCorpora(deps: SearchDeps, req: SearchRequest & { corpus: SearchCorpus }): Promise<{ results: SearchResult[]; cached: boolean; mode: SearchMode }> {
  const query = normalizeQuery(req.query);
  const ownerId = req.scope.ownerId;
  if (req.corpus === "messages" && !ownerId) return { results: [], cached: false, mode: req.mode };
  const { value, cached: hit } = await cached(deps, { ...req, query }, async () => {
    const vector = await queryVector(deps, req, query);
    const q = chunkQuery(deps, req, query, vector);
    const [docs, msgs] = await Promise.all([
      req.corpus === "messages" ? [] : resilient(deps, (db) => searchChunks(db, q)),
      req.corpus === "documents" || !ownerId ? [] : resilient(deps, (db) => searchMessageChunks(db, { ...q, ownerId })),
    ]);
    const results: SearchResult[] = [
      ...docs.map((d): DocumentResult => ({ type: "document", ...d })),
      ...msgs.map(
        (m): MessageResult => ({
          type: "message",
          threadId: m.threadId,
          threadTitle: m.threadTitle,
          messageId: m.messageId,
          role: m.role,
          createdAt: m.createdAt.toISOString(),
          ...snippet(m.text, req.query),
          score: m.score,
        }),
      ),
    ];
    return results.sort((a, b) => b.score - a.score).slice(0, req.limit);
  });
  return { results: value, cached: hit, mode: req.mode };
}

export type DocumentInput = { title: string; text: string; source?: string; metadata?: unknown };

/** What a chunk's vector is made from: its document's title gives the chunk its context. */
const embeddingInput = (title: string, text: string) => `${title}\n${text}`;

const documentScope = (ownerId: string | null) => (ownerId ? userScope(ownerId) : GLOBAL_SCOPE);

/**
 * Chunks, embeds and stores documents in one transaction, then invalidates cached results of the
 * owner's scope (the global one for the admin's). A user's `quota` is checked before anything is
 * embedded (a refusal costs no embedding call) and again, authoritatively, in the storing transaction.
 */
export async function ingestDocuments(deps: SearchDeps, ownerId: string | null, docs: DocumentInput[], quota?: Quota): Promise<DocumentRow[]> {
  const chunked = docs.map((d) => ({ ...d, texts: chunkText(d.text) }));
  if (ownerId && quota) await deps.db((db) => checkQuota(db, ownerId, footprint(chunked.map((d) => d.texts.length)), quota));
  const vectors = await embed(
    deps,
    chunked.flatMap((d) => d.texts.map((t) => embeddingInput(d.title, t))),
  );
  let next = 0;
  const rows = chunked.map((d) => ({ ...d, chunks: d.texts.map((text) => ({ text, embedding: vectors[next++]! })) }));
  // Deadlocks on the shared BM25 statistics are transient: the whole transaction is retried.
  const stored = await withRetry(() => deps.db((db) => insertDocuments(db, ownerId, rows, deps.embedder.name, quota)), { ...RETRY, retries: deps.config.SEARCH_RETRIES });
  await invalidate(deps, documentScope(ownerId));
  return stored;
}

export async function removeDocument(deps: SearchDeps, id: string, scope: Scope): Promise<boolean> {
  const removed = await deps.db((db) => deleteDocument(db, id, scope));
  if (removed) await invalidate(deps, documentScope(scope.ownerId));
  return removed;
}
