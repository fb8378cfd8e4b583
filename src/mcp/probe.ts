import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { getConfig } from "../config.ts";
import type { McpServerRow } from "../db/schema.ts";
import { withTimeout } from "../resilience.ts";
import { openToken, tokenSecret } from "./secrets.ts";
import { isSdkTimeout, McpFailure, MAX_TOOLS_PER_SERVER, mcpToolName } from "./tools.ts";
import { checkMcpUrl } from "./url-policy.ts";

export type ProbeResult = { status: "ok"; tools: { name: string; toolName: string; description: string | null }[] } | { status: "mcp_unavailable" | "timeout"; message: string };

/**
 * A registered server tried from the Worker, as a thread agent would reach it (the URL policy, its
 * token, streamable HTTP, the MCP_TIMEOUT_MS deadline): its tools as the model would see them, or
 * why it cannot be used. Nothing is kept.
 */
export async function probeMcpServer(env: Env, server: Pick<McpServerRow, "id" | "name" | "url" | "tokenCiphertext">): Promise<ProbeResult> {
  const config = getConfig(env);
  const verdict = checkMcpUrl(server.url, config.MCP_ALLOWED_ORIGINS);
  if (!verdict.ok) return { status: "mcp_unavailable", message: `the URL policy refuses it: ${verdict.reason}` };
  const token = server.tokenCiphertext ? await openToken(tokenSecret(config), server.id, server.tokenCiphertext) : undefined;
  const client = new Client({ name: "threadline", version: "1.0.0" }, { versionNegotiation: { mode: "auto", probe: { timeoutMs: config.MCP_TIMEOUT_MS, maxRetries: 0 } } });
  const transport = new StreamableHTTPClientTransport(verdict.url, { authProvider: { token: async () => token } });
  const listed: { name: string; description?: string }[] = [];
  try {
    await withTimeout(
      (async () => {
        await client.connect(transport);
        let cursor: string | undefined;
        do {
          const page = await client.listTools(cursor ? { cursor } : undefined);
          listed.push(...page.tools);
          cursor = page.nextCursor;
        } while (cursor && listed.length < MAX_TOOLS_PER_SERVER);
      })(),
      config.MCP_TIMEOUT_MS,
      () => new McpFailure("timeout", "no answer in time"),
    );
  } catch (err) {
    if (err instanceof McpFailure || isSdkTimeout(err)) return { status: "timeout", message: `no answer within ${config.MCP_TIMEOUT_MS} ms` };
    return { status: "mcp_unavailable", message: (err instanceof Error ? err.message : String(err)).slice(0, 500) };
  } finally {
    await client.close().catch(() => {});
  }
  const tools = listed.slice(0, MAX_TOOLS_PER_SERVER).map((t) => ({ name: t.name, toolName: mcpToolName(server.name, t.name), description: t.description ?? null }));
  return { status: "ok", tools };
}
