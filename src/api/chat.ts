import { createRoute, z } from "@hono/zod-openapi";
import { threadAgent } from "../agent/client.ts";
import { MAX_MESSAGE_CHARS, messageText } from "../agent/frames.ts";
import type { ToolResultFrame } from "../agent/frame-policy.ts";
import { canonicalId } from "../auth/access.ts";
import type { Thread } from "../db/schema.ts";
import { getConfig } from "../config.ts";
import { AppError, toAppError } from "../errors.ts";
import type { Context } from "hono";
import { apiRouter, bearerAuth, callerKey, errors, json, jsonBody, ownedThread, type AppEnv } from "./http.ts";
import { newThread } from "./threads.ts";
import { streamTurn, turnError } from "./turns.ts";

// The body the AI SDK's DefaultChatTransport (useChat) posts. Only the last user message is used:
// the server owns the thread's history.
const ChatBody = z
  .looseObject({
    id: z.string().openapi({ description: "The thread id" }),
    createThread: z.boolean().optional().openapi({ description: "When `id` is not a thread yet, make it the caller's new thread (CHAT_CREATE_THREADS makes this the default)" }),
    trigger: z.enum(["submit-message", "regenerate-message"]).default("submit-message"),
    messages: z
      .array(z.looseObject({ id: z.string().min(1).max(200), role: z.enum(["user", "assistant", "system"]), parts: z.array(z.looseObject({ type: z.string() })) }))
      .min(1)
      .max(10_000),
  })
  .openapi("ChatRequest");

type Part = {
  type: string;
  toolCallId?: string;
  toolName?: string;
  state?: string;
  output?: unknown;
  errorText?: string;
  approval?: { id?: string; approved?: boolean; reason?: string };
};

/** Decisions (approval-responded parts) and client tool results (output parts) of the assistant message a useChat client answers. */
async function interaction(c: Context<AppEnv>, threadId: string, last: { parts: Part[] }) {
  const p = c.get("principal");
  if (p.kind !== "user") throw new AppError("forbidden", "only the thread's owner answers its tool calls");
  const decisions = last.parts.flatMap((x) =>
    x.state === "approval-responded" && x.approval?.id && typeof x.approval.approved === "boolean"
      ? [{ approvalId: x.approval.id, approved: x.approval.approved, reason: x.approval.reason }]
      : [],
  );
  const results = last.parts.flatMap((x) =>
    (x.state === "output-available" || x.state === "output-error") && x.toolCallId
      ? [
          {
            toolCallId: x.toolCallId,
            toolName: x.type === "dynamic-tool" ? (x.toolName ?? "") : x.type.replace(/^tool-/, ""),
            output: x.output ?? null,
            state: x.state,
            errorText: x.errorText,
          },
        ]
      : [],
  );
  const r = await (await threadAgent(c.env, threadId)).interact({ decisions, results: results as ToolResultFrame[], by: p.user.id, echoes: "skip" });
  if (!r.ok) throw turnError(r.error);
  return r.stream ? streamTurn(c, r.stream) : c.body(null, 204);
}

/**
 * The thread a chat request runs on. useChat mints chat ids on the client, so an id that is not a
 * thread yet becomes the caller's new thread when the request asks (`createThread`) or the service
 * is configured to (CHAT_CREATE_THREADS); otherwise, and for someone else's thread, it is a 404.
 */
async function chatThread(c: Context<AppEnv>, id: string, create: boolean): Promise<Thread> {
  try {
    return await ownedThread(c, id);
  } catch (err) {
    if (!create || !(err instanceof AppError && err.code === "thread_not_found")) throw err;
  }
  const p = c.get("principal");
  if (p.kind !== "user") throw new AppError("forbidden", "the admin has no threads of its own: create one for a user with POST /api/v1/threads");
  const threadId = canonicalId(id);
  if (!threadId) throw new AppError("validation_failed", "a new thread's id must be a UUID: give useChat one, e.g. useChat({ id: crypto.randomUUID() })");
  return newThread(c.env, { id: threadId, userId: p.user.id }).catch((err: unknown) => {
    // Two first messages at once (the thread is the caller's now), or the id of someone else's thread (still a 404).
    if (toAppError(err).code === "conflict") return ownedThread(c, threadId);
    throw err;
  });
}

const Stream = { description: "AI SDK UI message stream", content: { "text/event-stream": { schema: z.string() } } };

export const chat = apiRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      summary: "useChat / DefaultChatTransport endpoint: runs a turn on thread `id` and streams it",
      security: bearerAuth,
      request: jsonBody(ChatBody),
      responses: { 200: Stream, ...errors(400, 401, 402, 403, 404, 413, 422, 429) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const thread = await chatThread(c, body.id, body.createThread ?? getConfig(c.env).CHAT_CREATE_THREADS);
      // useChat's approval and client-tool flow: the last message is the assistant's, carrying the answers to its tool calls.
      if (body.messages.at(-1)!.role === "assistant") return interaction(c, thread.id, body.messages.at(-1)!);
      const last = body.messages.at(-1)!;
      const text = messageText(last).trim();
      // A regenerate answers the thread's last user message again (the server's copy): what the client sends with it is not read.
      if (body.trigger === "submit-message") {
        if (last.role !== "user" || !text) throw new AppError("validation_failed", "the last message must be the user's, with text");
        if (text.length > MAX_MESSAGE_CHARS) throw new AppError("validation_failed", `message text exceeds ${MAX_MESSAGE_CHARS} characters`);
        if (last.parts.some((p) => p.type === "file"))
          throw new AppError("validation_failed", "file parts are not supported: attachments cannot be stored yet; send the text only");
      }
      const agent = await threadAgent(c.env, thread.id);
      const turn = await agent.httpTurn({ text, messageId: last.id, trigger: body.trigger, httpRequestId: c.get("requestId"), ownerId: thread.userId, keyHash: callerKey(c) });
      if (!turn.ok) throw turnError(turn.error);
      return streamTurn(c, turn.stream);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/stream",
      summary: "Resume the thread's active stream; 204 when none is active",
      security: bearerAuth,
      request: { params: z.object({ id: z.string() }) },
      responses: { 200: Stream, 204: { description: "No active stream" }, ...errors(401, 404) },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      const agent = await threadAgent(c.env, thread.id);
      const stream = await agent.resumeHttpStream();
      return stream ? streamTurn(c, stream) : c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}/stream",
      summary: "Stop the thread's active turn, as a WebSocket cancel does: the reply so far is kept, marked stopped (useChat's stop() only drops the connection)",
      security: bearerAuth,
      request: { params: z.object({ id: z.string() }) },
      responses: { 200: json(z.object({ stopped: z.boolean() }), "Whether a turn was streaming"), ...errors(401, 404) },
    }),
    async (c) => {
      const thread = await ownedThread(c, c.req.valid("param").id);
      return c.json({ stopped: await (await threadAgent(c.env, thread.id)).cancelTurn() }, 200);
    },
  );
