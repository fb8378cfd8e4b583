import { createRoute, z } from "@hono/zod-openapi";
import type { Approval } from "../agent/approvals.ts";
import { threadAgent, wipeThreadAgents } from "../agent/client.ts";
import { MAX_MESSAGE_CHARS } from "../agent/frames.ts";
import { withDb } from "../db/client.ts";
import { listMessages, type StoredMessage } from "../db/messages.ts";
import { usageTotals } from "../db/spend.ts";
import type { Thread } from "../db/schema.ts";
import { createThread, deleteThread, listThreads, updateThreadTitle } from "../db/threads.ts";
import { idParam, threadNotFound } from "../auth/access.ts";
import { TICKET_TTL_SECONDS } from "../auth/tickets.ts";
import { userAuthority } from "../authority/client.ts";
import { AppError } from "../errors.ts";
import { log } from "../observability/log.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { exportThread } from "./export.ts";
import { actingUserId, apiRouter, callerKey, bearerAuth, errors, json, jsonBody, ownedThread } from "./http.ts";
import { streamTurn, turnError } from "./turns.ts";
import { UsageSchema } from "./schemas.ts";

export const MAX_TITLE_LENGTH = 200;

const ThreadSchema = z.object({ id: z.uuid(), userId: z.uuid(), title: z.string().nullable(), createdAt: z.iso.datetime(), updatedAt: z.iso.datetime() }).openapi("Thread");
const MessageSchema = z
  .object({
    id: z.string(),
    role: z.enum(["user", "assistant", "system"]),
    parts: z.array(z.record(z.string(), z.unknown())),
    metadata: z.unknown().optional(),
    createdAt: z.iso.datetime().optional(),
  })
  .openapi("Message");
const Title = z.string().trim().min(1).max(MAX_TITLE_LENGTH);
const ThreadId = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, format: "uuid" }) });
const Page = { limit: z.coerce.number().int().min(1).max(100).default(20), cursor: z.string().max(200).optional() };

export const threadJson = (t: Thread): z.infer<typeof ThreadSchema> => ({
  id: t.id,
  userId: t.userId,
  title: t.title,
  createdAt: t.createdAt.toISOString(),
  updatedAt: t.updatedAt.toISOString(),
});

/** A new thread, its owner's authority told (best effort: an authority that missed it confirms the thread in Postgres on first use). */
export async function newThread(env: Env, input: { id?: string; userId: string; title?: string }): Promise<Thread> {
  const thread = await withDb(env, (db) => createThread(db, input));
  await userAuthority(env, thread.userId)
    .addThread(thread.id)
    .catch((err) => log("warn", "authority_unreachable", { userId: thread.userId, threadId: thread.id, error: String(err) }));
  return thread;
}

type MessageJson = z.infer<typeof MessageSchema>;
const messageJson = (m: StoredMessage & { createdAt: Date }) => ({ ...m, createdAt: m.createdAt.toISOString() }) as MessageJson;

const ApprovalSchema = z
  .object({
    approvalId: z.string(),
    toolCallId: z.string(),
    toolName: z.string(),
    input: z.unknown(),
    createdAt: z.number(),
    expiresAt: z.number(),
    status: z.enum(["pending", "approved", "denied", "expired"]),
    decidedAt: z.number().nullable(),
    decidedBy: z.string().nullable(),
    reason: z.string().nullable(),
  })
  .openapi("Approval");

/** Reads of Postgres see every change the thread's agent has made: it drains its outbox first (writes reach Postgres in the background). */
const synced = async (env: Env, threadId: string) => (await threadAgent(env, threadId)).sync();

export const threads = apiRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      summary: "Create a thread (the admin names the user)",
      security: bearerAuth,
      request: jsonBody(z.strictObject({ title: Title.optional(), userId: z.uuid().optional().openapi({ description: "Admin only" }) }).openapi("CreateThread")),
      responses: { 201: json(z.object({ thread: ThreadSchema }), "Created"), ...errors(400, 401, 404, 413, 422) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      if (body.userId && c.get("principal").kind === "user") throw new AppError("forbidden", "only the admin may create threads for another user");
      const thread = await newThread(c.env, { userId: actingUserId(c, body.userId), title: body.title });
      return c.json({ thread: threadJson(thread) }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      summary: "The caller's threads, newest first",
      security: bearerAuth,
      request: { query: z.object({ ...Page, userId: z.uuid().optional().openapi({ description: "Admin only" }) }) },
      responses: { 200: json(z.object({ items: z.array(ThreadSchema), nextCursor: z.string().nullable() }), "A page of threads"), ...errors(401, 422) },
    }),
    async (c) => {
      const { limit, cursor, userId } = c.req.valid("query");
      const page = await withDb(c.env, (db) => listThreads(db, actingUserId(c, userId), { limit, cursor: cursor ? decodeCursor(cursor) : undefined }));
      return c.json({ items: page.items.map(threadJson), nextCursor: page.next ? encodeCursor(page.next) : null }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}",
      summary: "A thread with its token usage",
      security: bearerAuth,
      request: { params: ThreadId },
      responses: { 200: json(z.object({ thread: ThreadSchema, usage: UsageSchema }), "The thread"), ...errors(401, 404) },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      await userAuthority(c.env, thread.userId).flushLedger();
      const usage = await withDb(c.env, (db) => usageTotals(db, { threadId: thread.id }));
      return c.json({ thread: threadJson(thread), usage }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/{id}",
      summary: "Rename a thread",
      security: bearerAuth,
      request: { params: ThreadId, ...jsonBody(z.strictObject({ title: Title.nullable() }).openapi("UpdateThread")) },
      responses: { 200: json(z.object({ thread: ThreadSchema }), "The thread"), ...errors(400, 401, 404, 413, 422) },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      const updated = await withDb(c.env, (db) => updateThreadTitle(db, thread.id, c.req.valid("json").title));
      if (!updated) throw new AppError("thread_not_found", "thread not found");
      return c.json({ thread: threadJson(updated) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      summary: "Delete a thread, its messages and its agent's storage",
      security: bearerAuth,
      request: { params: ThreadId },
      responses: { 204: { description: "Deleted" }, ...errors(401, 404) },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      // Closed at the authority first, so no one can open it while it goes.
      await userAuthority(c.env, thread.userId).removeThread(thread.id);
      await withDb(c.env, (db) => deleteThread(db, thread.id));
      await wipeThreadAgents(c.env, [thread.id]);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/messages",
      summary: "A page of messages: the newest page by default, oldest first; nextCursor pages back",
      security: bearerAuth,
      request: { params: ThreadId, query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100), cursor: z.coerce.number().int().positive().optional() }) },
      responses: { 200: json(z.object({ messages: z.array(MessageSchema), nextCursor: z.string().nullable() }), "Messages"), ...errors(401, 404, 422) },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      await synced(c.env, thread.id);
      const page = await withDb(c.env, (db) => listMessages(db, thread.id, c.req.valid("query")));
      return c.json({ messages: page.messages.map(messageJson), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}/messages",
      summary: "Clear the thread's messages (the owner, or the admin): every connected client sees it, Postgres follows; spend already recorded stays",
      security: bearerAuth,
      request: { params: ThreadId },
      responses: { 204: { description: "Cleared" }, ...errors(401, 404) },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      await (await threadAgent(c.env, thread.id)).clearHistory();
      await synced(c.env, thread.id);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/messages",
      summary: "Send a message and run a turn: an AI SDK UI message stream (SSE), or with Accept: application/json the finished turn",
      security: bearerAuth,
      request: { params: ThreadId, ...jsonBody(z.strictObject({ text: z.string().trim().min(1).max(MAX_MESSAGE_CHARS) }).openapi("SendMessage")) },
      responses: {
        200: {
          description: "The turn",
          content: { "text/event-stream": { schema: z.string() }, "application/json": { schema: z.object({ messages: z.array(MessageSchema) }) } },
        },
        ...errors(400, 401, 402, 404, 413, 422, 429),
      },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      const agent = await threadAgent(c.env, thread.id);
      const turn = await agent.httpTurn({ text: c.req.valid("json").text, httpRequestId: c.get("requestId"), ownerId: thread.userId, keyHash: callerKey(c) });
      if (!turn.ok) throw turnError(turn.error);
      if (!(c.req.header("accept") ?? "").includes("application/json")) return streamTurn(c, turn.stream);
      await turn.stream.pipeTo(new WritableStream());
      return c.json({ messages: (await agent.turnMessages(turn.userMessageId)) as MessageJson[] }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/tickets",
      summary: `A ticket that opens this thread's agent (WebSocket, get-messages) as ?ticket=, for ${TICKET_TTL_SECONDS} s: keeps the API key out of URLs`,
      security: bearerAuth,
      request: { params: ThreadId },
      responses: { 201: json(z.object({ ticket: z.string(), expiresAt: z.iso.datetime() }).openapi("Ticket"), "The ticket"), ...errors(401, 403, 404, 503) },
    }),
    async (c) => {
      const p = c.get("principal");
      if (p.kind !== "user") throw new AppError("forbidden", "tickets are for users; the admin authenticates with its token");
      // The authority checks the thread is theirs, without Postgres once it knows it: tickets work through an outage.
      const r = await userAuthority(c.env, p.user.id).issueTicket(p.keyHash, idParam(c.req.valid("param").id, threadNotFound));
      if (!r.ok) throw new AppError(r.code, r.message);
      return c.json({ ticket: r.ticket, expiresAt: new Date(r.expiresAt * 1000).toISOString() }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/approvals",
      summary: "Tool calls on this thread held for the owner's approval (pending by default), with what each would do",
      security: bearerAuth,
      request: { params: ThreadId, query: z.object({ status: z.enum(["pending", "approved", "denied", "expired", "all"]).default("pending") }) },
      responses: { 200: json(z.object({ approvals: z.array(ApprovalSchema) }), "Approvals"), ...errors(401, 404, 422) },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      const status = c.req.valid("query").status;
      const approvals = (await (await threadAgent(c.env, thread.id)).listApprovals(status === "all" ? undefined : status)) as unknown as Approval[];
      return c.json({ approvals: approvals as z.infer<typeof ApprovalSchema>[] }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/approvals/{approvalId}",
      summary: "Decide on a held tool call (the thread's owner only): approved, it runs and the turn continues; denied, the model is told so and answers",
      security: bearerAuth,
      request: {
        params: ThreadId.extend({ approvalId: z.string().min(1).max(200) }),
        ...jsonBody(z.strictObject({ approved: z.boolean(), reason: z.string().trim().min(1).max(500).optional() }).openapi("ApprovalDecision")),
      },
      responses: {
        200: json(z.object({ approval: ApprovalSchema }), "Decided; the turn continues (live to WebSocket clients, and GET /api/v1/chat/{id}/stream)"),
        ...errors(400, 401, 403, 404, 409, 410, 422),
      },
    }),
    async (c) => {
      const p = c.get("principal");
      if (p.kind !== "user") throw new AppError("forbidden", "only the thread's owner decides on its tool calls");
      const thread = await ownedThread(c, c.req.valid("param").id);
      const { approvalId } = c.req.valid("param");
      const { approved, reason } = c.req.valid("json");
      const agent = await threadAgent(c.env, thread.id);
      const r = await agent.interact({ decisions: [{ approvalId, approved, reason }], by: p.user.id });
      if (!r.ok) throw turnError(r.error);
      // The continuation goes on in the agent; this caller only wanted the decision recorded.
      void r.stream?.cancel();
      const [approval] = ((await agent.listApprovals()) as unknown as Approval[]).filter((a) => a.approvalId === approvalId);
      return c.json({ approval: approval as z.infer<typeof ApprovalSchema> }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/status",
      summary: "The thread agent's state: messages not yet written to Postgres, and whether a reply is streaming",
      security: bearerAuth,
      request: { params: ThreadId },
      responses: {
        200: json(
          z.object({
            outbox: z.object({
              backlog: z.number().int(),
              oldestAt: z.number().nullable(),
              quarantined: z.number().int().openapi({ description: "Changes Postgres refused for good, kept aside for the admin (see /api/v1/admin/threads/{id}/quarantine)" }),
              retryAttempt: z.number().int(),
              nextRetryAt: z.number().nullable(),
            }),
            streaming: z.boolean(),
          }),
          "Status",
        ),
        ...errors(401, 404),
      },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      return c.json(await (await threadAgent(c.env, thread.id)).status(), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/export",
      summary: "The whole thread as JSON or markdown",
      security: bearerAuth,
      request: { params: ThreadId, query: z.object({ format: z.enum(["json", "markdown"]).default("json") }) },
      responses: {
        200: {
          description: "The export",
          content: { "application/json": { schema: z.object({ thread: ThreadSchema, messages: z.array(MessageSchema) }) }, "text/markdown": { schema: z.string() } },
        },
        ...errors(401, 404, 422),
      },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      const format = c.req.valid("query").format;
      await synced(c.env, thread.id);
      const { messages } = await withDb(c.env, (db) => listMessages(db, thread.id, { limit: 100_000 }));
      if (format === "markdown") return c.body(exportThread(thread, messages), 200, { "content-type": "text/markdown; charset=utf-8" });
      return c.json({ thread: threadJson(thread), messages: messages.map(messageJson) }, 200);
    },
  );
