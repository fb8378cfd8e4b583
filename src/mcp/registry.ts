import { forgetThreadSettings, threadSettings } from "../flags/index.ts";
import type { McpServerRow } from "../db/schema.ts";

/** A server was registered or removed: this isolate's turns see it at once, others within FLAG_CACHE_SECONDS (as with flags). */
export const forgetMcpServers = forgetThreadSettings;

/**
 * The MCP servers a thread's turns use, read with its flags (src/flags: once from Postgres, then from
 * a per-isolate cache refreshed in the background). Null when Postgres cannot say: the agent keeps what it has.
 */
export async function threadMcpServers(env: Env, ownerId: string, threadId: string): Promise<McpServerRow[] | null> {
  return (await threadSettings(env, ownerId, threadId)).mcpServers;
}
