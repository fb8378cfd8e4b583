import { getConfig } from "../config";
import { withDb } from "../db/client";
import { embedderFor } from "./embeddings";
import type { SearchDeps } from "./search";

/** Search and ingestion in the Worker: Postgres through Hyperdrive, the KV cache, the configured embedder. */
export function searchDeps(env: Env): SearchDeps {
  const config = getConfig(env);
  return { db: (fn) => withDb(env, fn), cache: env.CACHE, embedder: embedderFor(config), config };
}
