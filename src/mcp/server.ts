import { McpServer, type CallToolResult } from "@modelcontextprotocol/server";
import { createMcpHandler } from "agents/mcp/server";
import type { Context } from "hono";
import { z } from "zod";
import { threadAgent } from "../agent/client.ts";
import { decodeCursor, encodeCursor } from "../api/cursor.ts";
import { limitBody, router, takeUserRate, type AppEnv } from "../api/http.ts";
import { threadJson } from "../api/threads.ts";
import { turnError } from "../api/turns.ts";
import { authenticate, bearerToken, documentScope, ownedThread, type Principal } from "../auth/access.ts";
import { withDb } from "../db/client.ts";
import { listMessages } from "../db/messages.ts";
import { listThreads } from "../db/threads.ts";
import { AppError, toAppError } from "../errors.ts";
import { MAX_MESSAGE_CHARS, messageText, type ThreadMessage } from "../messages.ts";
import { describeError, log } from "../observability/log.ts";
import { search } from "../search/search.ts";
import { searchDeps } from "../search/deps.ts";
import { isStorableString } from "../validation/storable.ts";

type UserPrincipal = Extract<Principal, { kind: "user" }>;

// What reaches Postgres (a message) or a query must be text it can store, as everywhere input enters.
const storable = (s: z.ZodString) => s.refine(isStorableString, "contains a character that cannot be stored (U+0000 or an unpaired surrogate)");

const json = (value: unknown): CallToolResult => ({ content: [{ type: "text", text: JSON.stringify(value) }] });

/** A tool's refusal or failure as a result the client reads: the API's own `{error:{code,message}}`. */
function refusal(err: unknown, tool: string, c: Context<AppEnv>): CallToolResult {
  const error = toAppError(err);
  if (error.status >= 500) log("error", "mcp_server_tool_failed", { requestId: c.get("requestId"), tool, code: error.code, error: describeError(error.cause ?? err) });
  return { isError: true, content: [{ type: "text", text: JSON.stringify(error.toJSON()) }] };
}

async function answer(tool: string, c: Context<AppEnv>, run: () => Promise<unknown>): Promise<CallToolResult> {
  try {
    return json(await run());
  } catch (err) {
    return refusal(err, tool, c);
  }
}

/**
 * Threadline as an MCP server, for one request of one user (stateless: a server per request, as
 * createMcpHandler wants). Each tool goes through what the HTTP API uses: the access module, the
 * search rate limit, and for send_message the thread agent's own turn, with its gate, limits and budget.
 */
function threadlineServer(c: Context<AppEnv>, principal: UserPrincipal): McpServer {
  const { env } = c;
  const server = new McpServer(
    { name: "threadline", version: "1.0.0" },
    { instructions: "Threadline: your documents (search_documents) and your chat threads (list_threads, read_thread, send_message)." },
  );
  server.registerTool(
    "search_documents",
    {
      description: "Search your documents and the shared knowledge base (keyword and semantic search). Returns the best passages with their documents' titles.",
      inputSchema: z.strictObject({
        query: storable(z.string().trim().min(1).max(1000)).describe("What to look for"),
        limit: z.number().int().min(1).max(50).default(10).describe("How many passages (at most 50)"),
        mode: z.enum(["hybrid", "lexical", "vector"]).default("hybrid"),
      }),
    },
    ({ query, limit, mode }) =>
      answer("search_documents", c, async () => {
        await takeUserRate(c, "search");
        return search(searchDeps(env), { query, limit, mode, scope: documentScope(principal) });
      }),
  );
  server.registerTool(
    "list_threads",
    {
      description: "Your chat threads, newest first; pass nextCursor back as cursor for older ones.",
      inputSchema: z.strictObject({ limit: z.number().int().min(1).max(100).default(20), cursor: z.string().max(200).optional() }),
    },
    ({ limit, cursor }) =>
      answer("list_threads", c, async () => {
        const page = await withDb(env, (db) => listThreads(db, principal.user.id, { limit, cursor: cursor ? decodeCursor(cursor) : undefined }));
        return { threads: page.items.map(threadJson), nextCursor: page.next ? encodeCursor(page.next) : null };
      }),
  );
  server.registerTool(
    "read_thread",
    {
      description: "A page of one of your threads' messages (role and text), oldest first: the newest page, or with cursor the one before it.",
      inputSchema: z.strictObject({ threadId: z.uuid(), limit: z.number().int().min(1).max(500).default(50), cursor: z.number().int().positive().optional() }),
    },
    ({ threadId, limit, cursor }) =>
      answer("read_thread", c, async () => {
        const thread = await ownedThread(env, principal, threadId);
        // What the thread's agent has not yet written to Postgres lands first (read-your-writes, as the API reads).
        await (await threadAgent(env, thread.id)).sync();
        const page = await withDb(env, (db) => listMessages(db, thread.id, { limit, cursor }));
        const messages = page.messages.map((m) => ({
          id: m.id,
          role: m.role,
          text: messageText(m as { parts: { type: string; text?: unknown }[] }),
          createdAt: m.createdAt.toISOString(),
        }));
        return { thread: threadJson(thread), messages, nextCursor: page.nextCursor };
      }),
  );
  server.registerTool(
    "send_message",
    {
      description: "Send a message to one of your threads and get the assistant's reply: a turn like any other, within your rate limit and token budget.",
      inputSchema: z.strictObject({ threadId: z.uuid(), text: storable(z.string().trim().min(1).max(MAX_MESSAGE_CHARS)) }),
    },
    ({ threadId, text }) =>
      answer("send_message", c, async () => {
        const thread = await ownedThread(env, principal, threadId);
        const agent = await threadAgent(env, thread.id);
        const turn = await agent.httpTurn({ text, httpRequestId: c.get("requestId"), ownerId: thread.userId, keyHash: principal.keyHash });
        if (!turn.ok) throw turnError(turn.error);
        await turn.stream.pipeTo(new WritableStream());
        const [user, reply] = (await agent.turnMessages(turn.userMessageId)) as ThreadMessage[];
        return { threadId: thread.id, userMessageId: user?.id ?? null, reply: reply ? { id: reply.id, text: messageText(reply), metadata: reply.metadata ?? null } : null };
      }),
  );
  return server;
}

/**
 * `/mcp`: streamable HTTP, stateless (agents' createMcpHandler), for a user's API key in
 * `Authorization: Bearer`, with the API's body limit. The admin token is refused: the tools act for one user.
 */
export const mcpEndpoint = router()
  .use("*", limitBody)
  .all("/", async (c) => {
    const principal = await authenticate(c.env, bearerToken(c.req.raw));
    if (principal.kind !== "user") throw new AppError("forbidden", "the MCP endpoint acts for a user: use a user's API key");
    c.set("principal", principal);
    return createMcpHandler(() => threadlineServer(c, principal), { route: "/mcp" }).fetch(c.req.raw);
  });
