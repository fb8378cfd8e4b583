import type { Config } from "../config";
import type { Db } from "../db/client";
import { checkQuota, deleteDocument, footprint, insertDocuments, searchChunks, type ChunkHit, type Quota, type Scope, type SearchMode } from "../db/documents";
import type { DocumentRow } from "../db/schema";
import { AppError, toAppError } from "../errors";
import { bumpCorpusVersion, cacheKey, corpusVersion, normalizeQuery, type Cache } from "./cache";
import { chunkText } from "./chunking";
import type { Embedder } from "./embeddings";
import { withRetry, withTimeout } from "./retry";

/** What search and ingestion need, so the same code runs in the Worker (Hyperdrive, KV) and in Node (bench). */
export type SearchDeps = {
  db: <T>(fn: (db: Db) => Promise<T>) => Promise<T>;
  cache?: Cache;
  embedder: Embedder;
  config: Config;
};

export type SearchRequest = { query: string; mode: SearchMode; limit: number; scope: Scope };
export type SearchResponse = { results: ChunkHit[]; cached: boolean; mode: SearchMode };

const RETRY = { baseDelayMs: 50, maxDelayMs: 1000 };

/** Postgres with transient faults retried and the whole attempt bounded in time; failure is search_unavailable. */
async function resilient<T>(deps: SearchDeps, fn: (db: Db) => Promise<T>): Promise<T> {
  try {
    const attempt = withRetry(() => deps.db(fn), { ...RETRY, retries: deps.config.SEARCH_RETRIES });
    return await withTimeout(attempt, deps.config.SEARCH_TIMEOUT_MS, () => new AppError("search_unavailable", `search timed out after ${deps.config.SEARCH_TIMEOUT_MS} ms`));
  } catch (err) {
    const error = toAppError(err);
    if (error.code === "search_unavailable" || error.code === "database_unavailable") throw new AppError("search_unavailable", "search is unavailable: the database could not be reached", { cause: err });
    throw error;
  }
}

// A broken cache must never break search: its failures only cost the cache's benefit.
const quietly = <T>(p: Promise<T>) => p.catch(() => undefined);

/** The embedding model is a remote service like the database: its failure makes search unavailable, not broken. */
async function embed(deps: SearchDeps, texts: string[]) {
  try {
    return await deps.embedder.embed(texts);
  } catch (err) {
    throw new AppError("search_unavailable", "the embedding model could not be reached", { cause: err });
  }
}

/** The one search function, behind both the HTTP route and the agent's tool. */
export async function search(deps: SearchDeps, req: SearchRequest): Promise<SearchResponse> {
  const query = normalizeQuery(req.query);
  const { cache } = deps;
  const version = cache && (await quietly(corpusVersion(cache)));
  const key = version && (await cacheKey({ version, scope: req.scope.ownerId ?? "global", mode: req.mode, limit: req.limit, query }));
  if (cache && key) {
    const hit = await quietly(cache.get<ChunkHit[]>(key, "json"));
    if (hit) return { results: hit, cached: true, mode: req.mode };
  }
  const vector = req.mode === "lexical" ? undefined : (await embed(deps, [query]))[0];
  const results = await resilient(deps, (db) =>
    searchChunks(db, { mode: req.mode, text: query, vector, embedder: deps.embedder.name, scope: req.scope, limit: req.limit, candidates: Math.max(req.limit, deps.config.SEARCH_CANDIDATES), vectorWeight: deps.embedder.fusionWeight }),
  );
  if (cache && key) await quietly(cache.put(key, JSON.stringify(results), { expirationTtl: deps.config.SEARCH_CACHE_TTL_SECONDS }));
  return { results, cached: false, mode: req.mode };
}

export type DocumentInput = { title: string; text: string; source?: string; metadata?: unknown };

/** What a chunk's vector is made from: its document's title gives the chunk its context. */
const embeddingInput = (title: string, text: string) => `${title}\n${text}`;

/**
 * Chunks, embeds and stores documents in one transaction, then invalidates cached results. A user's
 * `quota` is checked before anything is embedded (a refusal costs no embedding call) and again,
 * authoritatively, in the storing transaction.
 */
export async function ingestDocuments(deps: SearchDeps, ownerId: string | null, docs: DocumentInput[], quota?: Quota): Promise<DocumentRow[]> {
  const chunked = docs.map((d) => ({ ...d, texts: chunkText(d.text) }));
  if (ownerId && quota) await deps.db((db) => checkQuota(db, ownerId, footprint(chunked.map((d) => d.texts.length)), quota));
  const vectors = await embed(deps, chunked.flatMap((d) => d.texts.map((t) => embeddingInput(d.title, t))));
  let next = 0;
  const rows = chunked.map((d) => ({ ...d, chunks: d.texts.map((text) => ({ text, embedding: vectors[next++]! })) }));
  // Deadlocks on the shared BM25 statistics are transient: the whole transaction is retried.
  const stored = await withRetry(() => deps.db((db) => insertDocuments(db, ownerId, rows, deps.embedder.name, quota)), { ...RETRY, retries: deps.config.SEARCH_RETRIES });
  if (deps.cache) await bumpCorpusVersion(deps.cache);
  return stored;
}

export async function removeDocument(deps: SearchDeps, id: string, scope: Scope): Promise<boolean> {
  const removed = await deps.db((db) => deleteDocument(db, id, scope));
  if (removed && deps.cache) await bumpCorpusVersion(deps.cache);
  return removed;
}
