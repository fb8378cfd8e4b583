import { TtlCache } from "../cache/ttl-cache.ts";
import { getConfig } from "../config.ts";
import { withDb } from "../db/client.ts";
import { mcpServersForThread } from "../db/mcp-servers.ts";
import type { McpServerRow } from "../db/schema.ts";
import { toAppError } from "../errors.ts";
import { log } from "../observability/log.ts";

const cache = new TtlCache<McpServerRow[] | null>();

/** A server was registered or removed: this isolate's turns see it at once, others within FLAG_CACHE_SECONDS (as with flags). */
export const forgetMcpServers = () => cache.clear();

/**
 * The MCP servers a thread's turns use, read like flags: once from Postgres, then from a per-isolate
 * cache refreshed in the background. Null when Postgres cannot say: the agent keeps what it has.
 */
export function threadMcpServers(env: Env, ownerId: string, threadId: string): Promise<McpServerRow[] | null> {
  return cache.get(
    `${ownerId}/${threadId}`,
    getConfig(env).FLAG_CACHE_SECONDS * 1000,
    () => withDb(env, (db) => mcpServersForThread(db, ownerId, threadId)),
    (err, stale) => {
      log("warn", "mcp_registry_unavailable", { threadId, code: toAppError(err).code, using: stale ? "last" : "connected" });
      return stale ?? null;
    },
  );
}
