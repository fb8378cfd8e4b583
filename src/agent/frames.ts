import { z } from "zod";

/** Limits on what one WebSocket frame may carry. */
export const MAX_FRAME_BYTES = 1024 * 1024;
export const MAX_MESSAGE_CHARS = 32_000;

const part = z.looseObject({ type: z.string().min(1).max(100) });

const uiMessage = z.looseObject({
  id: z.string().min(1).max(200),
  role: z.enum(["user", "assistant", "system"]),
  parts: z.array(part).max(1000),
});

/** A message's text: its text parts, joined by newlines. */
export const messageText = (m: { parts: { type: string; text?: unknown }[] }) =>
  m.parts.flatMap((p) => (p.type === "text" && typeof p.text === "string" ? [p.text] : [])).join("\n");

const textLength = (m: z.infer<typeof uiMessage>) =>
  m.parts.reduce((n, p) => n + (p.type === "text" && typeof p.text === "string" ? p.text.length : 0), 0);

/** The JSON body of a `cf_agent_use_chat_request` frame: the client's transcript and what to do with it. */
export const chatRequestBody = z
  .looseObject({
    messages: z.array(uiMessage).max(10_000),
    trigger: z.enum(["submit-message", "regenerate-message"]).default("submit-message"),
  })
  .superRefine((body, ctx) => {
    const last = body.messages.at(-1);
    if (body.trigger === "submit-message") {
      if (!last || last.role !== "user") return ctx.addIssue({ code: "custom", path: ["messages"], message: "the last message must be the user's" });
      if (textLength(last) === 0) ctx.addIssue({ code: "custom", path: ["messages"], message: "the user's message has no text" });
    }
    if (last && textLength(last) > MAX_MESSAGE_CHARS)
      ctx.addIssue({ code: "custom", path: ["messages"], message: `message text exceeds ${MAX_MESSAGE_CHARS} characters` });
  });
export type ChatRequestBody = z.infer<typeof chatRequestBody>;

const chatRequestFrame = z.object({
  type: z.literal("cf_agent_use_chat_request"),
  id: z.string().min(1).max(200),
  init: z.looseObject({ method: z.string().optional(), body: z.string().optional() }),
});
export type ChatRequestFrame = z.infer<typeof chatRequestFrame>;

export type FrameError = { code: string; message: string; retryAfter?: number };

export const errorFrame = (error: FrameError) => JSON.stringify({ type: "error", error });

/** The protocol's own failure frame for a chat request, which `useAgentChat` shows as the turn's error. */
export const chatErrorFrame = (id: string, error: FrameError) =>
  JSON.stringify({ type: "cf_agent_use_chat_response", id, body: error.message, done: true, error: true, code: error.code, retryAfter: error.retryAfter });

export type ReadFrame =
  | { kind: "refuse"; reply: string }
  | { kind: "chat"; frame: ChatRequestFrame; body: ChatRequestBody }
  | { kind: "pass"; type: string };

/**
 * Checks a frame before the chat protocol sees it: refused frames get a reply, chat requests come
 * back parsed, and frames of other types pass through to the SDK's own handlers (RPC, state, resume).
 */
export function readFrame(raw: string | ArrayBuffer | ArrayBufferView): ReadFrame {
  const refuse = (error: FrameError) => ({ kind: "refuse", reply: errorFrame(error) }) as const;
  if (typeof raw !== "string") return refuse({ code: "invalid_frame", message: "binary frames are not supported" });
  if (raw.length > MAX_FRAME_BYTES) return refuse({ code: "frame_too_large", message: `frame exceeds ${MAX_FRAME_BYTES} bytes` });
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return refuse({ code: "invalid_frame", message: "frame is not valid JSON" });
  }
  if (!json || typeof json !== "object" || typeof (json as { type?: unknown }).type !== "string")
    return refuse({ code: "invalid_frame", message: "frame must be a JSON object with a string type" });
  const type = (json as { type: string }).type;
  // The protocol lets a client push a whole transcript to persist; the server owns history here.
  if (type === "cf_agent_chat_messages") return refuse({ code: "forbidden", message: "clients cannot write the thread's history; send a chat request" });
  // Every tool of ours runs on the server and needs no approval: a client-supplied result would be forged history.
  if (type === "cf_agent_tool_result" || type === "cf_agent_tool_approval")
    return refuse({ code: "forbidden", message: "this thread's tools run on the server; clients cannot supply tool results or approvals" });
  if (type !== "cf_agent_use_chat_request") return { kind: "pass", type };
  const frame = chatRequestFrame.safeParse(json);
  if (!frame.success) return refuse({ code: "invalid_frame", message: `invalid chat request: ${z.prettifyError(frame.error)}` });
  const { id, init } = frame.data;
  if ((init.method ?? "POST") !== "POST") return { kind: "pass", type };
  let body: unknown;
  try {
    body = JSON.parse(init.body ?? "");
  } catch {
    return { kind: "refuse", reply: chatErrorFrame(id, { code: "invalid_frame", message: "chat request body is not valid JSON" }) };
  }
  const parsed = chatRequestBody.safeParse(body);
  if (!parsed.success)
    return { kind: "refuse", reply: chatErrorFrame(id, { code: "validation_failed", message: z.prettifyError(parsed.error).replaceAll("\n", "; ") }) };
  return { kind: "chat", frame: frame.data, body: parsed.data };
}
