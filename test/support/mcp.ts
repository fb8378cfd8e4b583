import { env } from "./env.ts";
import { fetchApp, postJson, sendJson } from "./helpers.ts";

const base = (env as typeof env & { MCP_TEST_SERVER_URL: string }).MCP_TEST_SERVER_URL;

export type McpCall = { tool: string; args: unknown; authorization: string | null };

/** A server of this test's own on the test MCP server (test/support/mcp-server.ts): its URL, its switches and what it saw. */
export function testMcpServer() {
  const root = `${base}/s/${crypto.randomUUID()}`;
  return {
    url: `${root}/mcp`,
    set: async (state: { mode?: "up" | "down" | "hang" | "hang-list"; token?: string | null }) => {
      const res = await fetch(`${root}/state`, { method: "POST", body: JSON.stringify(state) });
      if (!res.ok) throw new Error(`mcp state: ${res.status}`);
    },
    seen: async () => (await (await fetch(`${root}/calls`)).json()) as { requests: number; abandoned: number; calls: McpCall[] },
  };
}

export type McpServerJson = { id: string; name: string; url: string; threadId: string | null; hasToken: boolean; createdAt: string };

export const registerMcpServer = (apiKey: string | null, body: Record<string, unknown>) => postJson("/api/v1/mcp-servers", body, apiKey);

/** Registers a server and returns it, failing the test on any other answer than 201. */
export async function addMcpServer(apiKey: string, body: Record<string, unknown>): Promise<McpServerJson> {
  const res = await registerMcpServer(apiKey, body);
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { server: McpServerJson }).server;
}

export const testMcp = (apiKey: string, id: string) => fetchApp(`/api/v1/mcp-servers/${id}/test`, { method: "POST" }, apiKey);

/** Sets a thread's flag as the admin; the isolate that handled it sees it at once. */
export async function setThreadFlag(threadId: string, flag: string, value: unknown) {
  const res = await sendJson("PUT", `/api/v1/admin/threads/${threadId}/flags/${flag}`, { value });
  if (res.status !== 200) throw new Error(`flag: ${res.status} ${await res.text()}`);
}
