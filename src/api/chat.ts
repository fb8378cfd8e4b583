import { createRoute, z } from "@hono/zod-openapi";
import { threadAgent } from "../agent/client";
import { MAX_MESSAGE_CHARS, messageText } from "../agent/frames";
import { AppError } from "../errors";
import { apiRouter, bearerAuth, callerKey, errors, jsonBody, ownedThread } from "./http";
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
