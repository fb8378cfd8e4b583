import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { createServer, type ServerResponse } from "node:http";
import { z } from "zod";
import { readBody, sendJson } from "./node-http.ts";

/**
 * A real MCP server for the tests: the official SDK (v1) over streamable HTTP, stateless, in Node on
 * 127.0.0.1. Every test gets servers of its own under `/s/<key>/mcp`, so concurrent tests never
 * share state. Tools: `echo {text}`, `slow` (answers only when the client gives up), `fail` (a tool
 * error), `get.info` (structured content, and a name the model's API would refuse). Per key:
 * - `POST /s/<key>/state {mode?: "up"|"down"|"hang"|"hang-list", token?: string|null}`: down drops
 *   every connection, hang holds requests unanswered until the client goes (hang-list only its
 *   tools/list); with a token, a request without `Authorization: Bearer <token>` gets 401;
 * - `GET /s/<key>/calls`: `{requests, abandoned, calls:[{tool, args, authorization}]}`: how many requests
 *   came, how many their clients gave up on (calls of `slow`, requests held by hang), and every tool call in order.
 */
export type McpTestServer = { url: string; stop: () => Promise<void> };

type Instance = {
  mode: "up" | "down" | "hang" | "hang-list";
  token: string | null;
  requests: number;
  abandoned: number;
  calls: { tool: string; args: unknown; authorization: string | null }[];
};

export async function startMcpTestServer(): Promise<McpTestServer> {
  const instances = new Map<string, Instance>();
  const instance = (key: string) => {
    let i = instances.get(key);
    if (!i) instances.set(key, (i = { mode: "up", token: null, requests: 0, abandoned: 0, calls: [] }));
    return i;
  };
  const server = createServer(async (req, res) => {
    try {
      const match = /^\/s\/([\w-]{1,64})\/(mcp|state|calls)$/.exec(new URL(req.url ?? "/", "http://x").pathname);
      if (!match) return sendJson(res, 404, { error: "no such route" });
      const [, key, route] = match as unknown as [string, string, string];
      const inst = instance(key);
      if (route === "calls") return sendJson(res, 200, { requests: inst.requests, abandoned: inst.abandoned, calls: inst.calls });
      if (route === "mcp" && inst.mode === "down") return void (inst.requests++, req.socket.destroy());
      const body = await readBody(req);
      if (route === "state") {
        Object.assign(inst, JSON.parse(body || "{}"));
        return sendJson(res, 200, { mode: inst.mode, token: inst.token });
      }
      inst.requests++;
      if (inst.mode === "hang" || (inst.mode === "hang-list" && /"method":"tools\/list"/.test(body))) return void res.once("close", () => inst.abandoned++);
      const authorization = req.headers.authorization ?? null;
      if (inst.token && authorization !== `Bearer ${inst.token}`) return sendJson(res, 401, { error: "unauthorized" });
      // Stateless: no stream of its own for server messages (the SDK's stateless examples answer GET so too).
      if (req.method !== "POST") return sendJson(res, 405, { error: "method not allowed" });
      const mcp = toolServer(inst, authorization, res);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on("close", () => {
        void transport.close();
        void mcp.close();
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
    } catch (err) {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function toolServer(inst: Instance, authorization: string | null, res: ServerResponse): McpServer {
  const mcp = new McpServer({ name: "threadline-test-mcp", version: "1.0.0" });
  const record = (tool: string, args: unknown) => inst.calls.push({ tool, args, authorization });
  mcp.registerTool("echo", { description: "Echoes the text back", inputSchema: { text: z.string() } }, async ({ text }) => {
    record("echo", { text });
    return { content: [{ type: "text", text: `echo: ${text}` }] };
  });
  mcp.registerTool("lookup", { description: "Looks a question up in this server's facts", inputSchema: { query: z.string() } }, async ({ query }) => {
    record("lookup", { query });
    return { content: [{ type: "text", text: `facts about: ${query}` }] };
  });
  mcp.registerTool("slow", { description: "Answers only once the client has given up waiting" }, async () => {
    record("slow", {});
    await new Promise((resolve) => res.once("close", resolve));
    inst.abandoned++;
    return { content: [{ type: "text", text: "too late" }] };
  });
  mcp.registerTool("fail", { description: "Always fails" }, async () => {
    record("fail", {});
    return { isError: true, content: [{ type: "text", text: "the tool failed on purpose" }] };
  });
  mcp.registerTool("get.info", { description: "Structured facts about this server" }, async () => {
    record("get.info", {});
    return { content: [{ type: "text", text: '{"server":"threadline-test-mcp"}' }], structuredContent: { server: "threadline-test-mcp" } };
  });
  return mcp;
}
