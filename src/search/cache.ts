/** The part of a KV namespace the search cache uses; Workers KV in the Worker, anything alike in Node. */
export type Cache = Pick<KVNamespace, "get" | "put">;

const VERSION_KEY = "search:corpus-version";

/**
 * Cached results are keyed by the corpus version. Ingestion and deletion publish a fresh random one
 * after they commit, so an entry can only have been computed after every write published before it,
 * and no later write can be hidden by it (a counter could be lost to two racing increments).
 */
export const corpusVersion = async (cache: Cache) => (await cache.get(VERSION_KEY)) ?? "0";

export const bumpCorpusVersion = (cache: Cache) => cache.put(VERSION_KEY, crypto.randomUUID());

/** Lower-cased, whitespace-collapsed, Unicode-normalised: "Cats  and DOGS" and "cats and dogs" share an entry. */
export const normalizeQuery = (q: string) => q.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();

export async function cacheKey(parts: { version: string; scope: string; mode: string; limit: number; query: string }) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.query));
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  return `search:${parts.version}:${parts.scope}:${parts.mode}:${parts.limit}:${hex}`;
}
