import { userAuthority } from "../authority/client.ts";
import { getConfig } from "../config.ts";
import { withDb } from "../db/client.ts";
import { GLOBAL_SCOPE, kvVersion, versionKey, type Cache, type CacheVersions } from "./cache.ts";
import { embedderFor } from "./embeddings.ts";
import type { SearchDeps } from "./search.ts";

/**
 * Cache versions in the Worker: a user's documents' and messages' in their authority (a Durable Object: any number of writes
 * a second, strongly consistent, and already on a user's search path for the rate limit); the global
 * documents' in one KV key, written by the admin's rare ingests and throttled (see KvVersion).
 */
export function workerCacheVersions(env: Env, kv: Cache = env.CACHE): CacheVersions {
  // `user:<id>` (their documents) or `messages:<id>`.
  const owner = (scope: string) => {
    const [corpus, userId] = scope.split(":") as ["user" | "messages", string];
    return { authority: userAuthority(env, userId), corpus: corpus === "user" ? ("documents" as const) : ("messages" as const) };
  };
  return {
    read: async (scope) => {
      if (scope === GLOBAL_SCOPE) return kvVersion(kv, versionKey(scope)).read();
      const { authority, corpus } = owner(scope);
      return (await authority.searchVersion(corpus)).toString();
    },
    bump: async (scope) => {
      if (scope === GLOBAL_SCOPE) return kvVersion(kv, versionKey(scope)).bump();
      const { authority, corpus } = owner(scope);
      await authority.bumpSearchVersion(corpus);
    },
  };
}

/** Search and ingestion in the Worker: Postgres through Hyperdrive, the KV cache, the configured embedder; `versions`: a turn's (./cache.ts, turnVersions). */
export function searchDeps(env: Env, versions: CacheVersions = workerCacheVersions(env)): SearchDeps {
  const config = getConfig(env);
  return { db: (fn) => withDb(env, fn), cache: env.CACHE, versions, embedder: embedderFor(config), config };
}
