import { createRoute, z } from "@hono/zod-openapi";
import { threadAgent } from "../agent/client";
import { MAX_MESSAGE_CHARS, messageText } from "../agent/frames";
import type { ToolResultFrame } from "../agent/frame-policy";
import { AppError } from "../errors";
import type { Context } from "hono";
import { apiRouter, bearerAuth, callerKey, errors, jsonBody, ownedThread, type AppEnv } from "./http";
import { streamTurn, turnError } from "./turns";

// The body the AI SDK's DefaultChatTransport (useChat) posts. Only the last user message is used:
// the server owns the thread's history.
const ChatBody = z
  .looseObject({
    id: z.string().openapi({ description: "The thread id" }),
    trigger: z.enum(["submit-message", "regenerate-message"]).default("submit-message"),
    messages: z
      .array(z.looseObject({ id: z.string().min(1).max(200), role: z.enum(["user", "assistant", "system"]), parts: z.array(z.looseObject({ type: z.string() })) }))
      .min(1)
      .max(10_000),
  })
  .openapi("ChatRequest");

type Part = { type: string; toolCallId?: string; toolName?: string; state?: string; output?: unknown; errorText?: string; approval?: { id?: string; approved?: boolean; reason?: string } };

/** Decisions (approval-responded parts) and client tool results (output parts) of the assistant message a useChat client answers. */
async function interaction(c: Context<AppEnv>, threadId: string, last: { parts: Part[] }) {
  const p = c.get("principal");
  if (p.kind !== "user") throw new AppError("forbidden", "only the thread's owner answers its tool calls");
  const decisions = last.parts.flatMap((x) => (x.state === "approval-responded" && x.approval?.id && typeof x.approval.approved === "boolean" ? [{ approvalId: x.approval.id, approved: x.approval.approved, reason: x.approval.reason }] : []));
  const results = last.parts.flatMap((x) =>
    (x.state === "output-available" || x.state === "output-error") && x.toolCallId
      ? [{ toolCallId: x.toolCallId, toolName: x.type === "dynamic-tool" ? (x.toolName ?? "") : x.type.replace(/^tool-/, ""), output: x.output ?? null, state: x.state, errorText: x.errorText }]
      : [],
  );
  const r = await (await threadAgent(c.env, threadId)).interact({ decisions, results: results as ToolResultFrame[], by: p.user.id, echoes: "skip" });
  if (!r.ok) throw turnError(r.error);
  return r.stream ? streamTurn(c, r.stream) : c.body(null, 204);
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
      responses: { 200: Stream, ...errors(400, 401, 402, 404, 413, 422, 429) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const thread = await ownedThread(c, body.id);
      // useChat's approval and client-tool flow: the last message is the assistant's, carrying the answers to its tool calls.
      if (body.messages.at(-1)!.role === "assistant") return interaction(c, thread.id, body.messages.at(-1)!);
      if (body.trigger !== "submit-message") throw new AppError("validation_failed", "only submit-message is supported over HTTP");
      const last = body.messages.at(-1)!;
      const text = messageText(last).trim();
      if (last.role !== "user" || !text) throw new AppError("validation_failed", "the last message must be the user's, with text");
      if (text.length > MAX_MESSAGE_CHARS) throw new AppError("validation_failed", `message text exceeds ${MAX_MESSAGE_CHARS} characters`);
      const agent = await threadAgent(c.env, thread.id);
      const turn = await agent.httpTurn({ text, messageId: last.id, httpRequestId: c.get("requestId"), ownerId: thread.userId, keyHash: callerKey(c) });
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
  );
