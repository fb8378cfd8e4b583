import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { idParam } from "../auth/access.ts";
import { getConfig } from "../config.ts";
import { withDb } from "../db/client.ts";
import { createMcpServer, deleteMcpServer, getMcpServer, listMcpServers } from "../db/mcp-servers.ts";
import type { McpServerRow } from "../db/schema.ts";
import { AppError, toAppError } from "../errors.ts";
import { probeMcpServer } from "../mcp/probe.ts";
import { forgetMcpServers } from "../mcp/registry.ts";
import { sealToken, tokenSecret } from "../mcp/secrets.ts";
import { checkMcpUrl, MAX_MCP_URL_LENGTH } from "../mcp/url-policy.ts";
import { apiRouter, bearerAuth, errors, json, jsonBody, ownedThread, type AppEnv } from "./http.ts";

export const MAX_MCP_SERVERS_PER_USER = 20;

const McpServerSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    url: z.string(),
    threadId: z.uuid().nullable().openapi({ description: "The one thread whose turns use it; null: all the user's threads" }),
    hasToken: z.boolean().openapi({ description: "A bearer token is stored for it (sealed; never returned)" }),
    createdAt: z.iso.datetime(),
  })
  .openapi("McpServer");

const CreateMcpServer = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,23}$/, "1-24 characters: lower-case letters, digits, _ and -, starting with a letter")
      .openapi({ description: "Names its tools for the model: mcp_<name>_<tool>" }),
    url: z.string().trim().max(MAX_MCP_URL_LENGTH).openapi({ description: "The server's streamable HTTP endpoint: https, on a public host (see MCP_ALLOWED_ORIGINS)" }),
    token: z
      .string()
      .regex(/^[\x21-\x7e]{1,4096}$/, "1-4096 visible ASCII characters")
      .optional()
      .openapi({ description: "Sent as Authorization: Bearer on every request to the server; stored encrypted" }),
    threadId: z.uuid().optional().openapi({ description: "Only this thread of yours uses it" }),
  })
  .openapi("CreateMcpServer");

const ServerId = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, format: "uuid" }) });

const ProbeSchema = z
  .union([
    z.object({
      status: z.literal("ok"),
      tools: z.array(z.object({ name: z.string(), toolName: z.string().openapi({ description: "The name the model calls it by" }), description: z.string().nullable() })),
    }),
    z.object({ status: z.enum(["mcp_unavailable", "timeout"]), message: z.string() }),
  ])
  .openapi("McpServerTest");

const serverJson = (s: McpServerRow): z.infer<typeof McpServerSchema> => ({
  id: s.id,
  name: s.name,
  url: s.url,
  threadId: s.threadId,
  hasToken: s.tokenCiphertext !== null,
  createdAt: s.createdAt.toISOString(),
});

const notFound = () => new AppError("mcp_server_not_found", "MCP server not found");

/** MCP servers are a user's own: the admin has none and reaches none. */
function callerId(c: Context<AppEnv>): string {
  const p = c.get("principal");
  if (p.kind !== "user") throw new AppError("forbidden", "MCP servers belong to users; the admin has none");
  return p.user.id;
}

/** The caller's server; someone else's is the same 404 as none. */
async function ownedServer(c: Context<AppEnv>, rawId: string): Promise<McpServerRow> {
  const userId = callerId(c);
  const id = idParam(rawId, notFound);
  const server = await withDb(c.env, (db) => getMcpServer(db, id));
  if (!server || server.userId !== userId) throw notFound();
  return server;
}

export const mcpServers = apiRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      summary: `Register an MCP server (streamable HTTP) whose tools your threads' model may call, after your approval; at most ${MAX_MCP_SERVERS_PER_USER}`,
      security: bearerAuth,
      request: jsonBody(CreateMcpServer),
      responses: { 201: json(z.object({ server: McpServerSchema }), "Registered"), ...errors(400, 401, 403, 404, 409, 413, 422, 503) },
    }),
    async (c) => {
      const userId = callerId(c);
      const body = c.req.valid("json");
      const verdict = checkMcpUrl(body.url, getConfig(c.env).MCP_ALLOWED_ORIGINS);
      if (!verdict.ok) throw new AppError("validation_failed", `url refused: ${verdict.reason}`);
      const threadId = body.threadId ? (await ownedThread(c, body.threadId)).id : null;
      const id = crypto.randomUUID();
      const tokenCiphertext = body.token ? await sealToken(tokenSecret(getConfig(c.env)), id, body.token) : null;
      const row = { id, userId, threadId, name: body.name, url: verdict.url.href, tokenCiphertext };
      const server = await withDb(c.env, (db) => createMcpServer(db, row, MAX_MCP_SERVERS_PER_USER)).catch((err: unknown) => {
        const e = toAppError(err);
        throw e.code === "conflict" ? new AppError("conflict", `you already have an MCP server named ${body.name}`) : e;
      });
      forgetMcpServers();
      return c.json({ server: serverJson(server) }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      summary: "Your MCP servers, oldest first",
      security: bearerAuth,
      responses: { 200: json(z.object({ items: z.array(McpServerSchema) }), "Your servers"), ...errors(401, 403) },
    }),
    async (c) => {
      const userId = callerId(c);
      const rows = await withDb(c.env, (db) => listMcpServers(db, userId));
      return c.json({ items: rows.map(serverJson) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      summary: "Remove an MCP server: your threads stop offering its tools from their next turn, and drop its connection and token",
      security: bearerAuth,
      request: { params: ServerId },
      responses: { 204: { description: "Removed" }, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const server = await ownedServer(c, c.req.valid("param").id);
      await withDb(c.env, (db) => deleteMcpServer(db, server.id));
      forgetMcpServers();
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/test",
      summary: "Connect to the server now and list its tools, as your threads would see them (MCP_TIMEOUT_MS at most)",
      security: bearerAuth,
      request: { params: ServerId },
      responses: { 200: json(z.object({ result: ProbeSchema }), "What the server answered, or why it could not be used"), ...errors(401, 403, 404, 503) },
    }),
    async (c) => {
      const server = await ownedServer(c, c.req.valid("param").id);
      return c.json({ result: await probeMcpServer(c.env, server) }, 200);
    },
  );
