import { userAuthority } from "../authority/client.ts";
import { getConfig } from "../config.ts";
import { withDb } from "../db/client.ts";
import { GLOBAL_SCOPE, kvVersion, versionKey, type Cache, type CacheVersions } from "./cache.ts";
import { embedderFor } from "./embeddings.ts";
import type { SearchDeps } from "./search.ts";

/**
 * Cache versions in the Worker: a user's documents' in their authority (a Durable Object: any number of writes
 * a second, strongly consistent, and already on a user's search path for the rate limit); the global
 * documents' in one KV key, written by the admin's rare ingests and throttled (see KvVersion).
 */
export function workerCacheVersions(env: Env, kv: Cache = env.CACHE): CacheVersions {
  const owner = (scope: string) => userAuthority(env, scope.slice("user:".length));
  return {
    read: async (scope) => (scope === GLOBAL_SCOPE ? kvVersion(kv, versionKey(scope)).read() : (await owner(scope).searchVersion()).toString()),
    bump: async (scope) => void (scope === GLOBAL_SCOPE ? await kvVersion(kv, versionKey(scope)).bump() : await owner(scope).bumpSearchVersion()),
  };
}

/** Search and ingestion in the Worker: Postgres through Hyperdrive, the KV cache, the configured embedder; `versions`: a turn's (./cache.ts, turnVersions). */
export function searchDeps(env: Env, versions: CacheVersions = workerCacheVersions(env)): SearchDeps {
  const config = getConfig(env);
  return { db: (fn) => withDb(env, fn), cache: env.CACHE, versions, embedder: embedderFor(config), config };
}
