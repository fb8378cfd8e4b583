import { CHAT_MESSAGE_TYPES, parseProtocolMessage } from "agents/chat";
import { MessageType } from "agents/types";
import { z } from "zod";
import { AppError } from "../errors.ts";
import { MAX_MESSAGE_CHARS, messageText } from "../messages.ts";
import { describeUnstorable, findUnstorable } from "../validation/storable.ts";

/** Limits on what one WebSocket frame may carry. */
export const MAX_FRAME_BYTES = 1024 * 1024;

const part = z.looseObject({ type: z.string().min(1).max(100) });
const uiMessage = z.looseObject({ id: z.string().min(1).max(200), role: z.enum(["user", "assistant", "system"]), parts: z.array(part).max(1000) });

/** The JSON body of a chat request (WebSocket or HTTP): the client's transcript and what to do with it. */
export const chatRequestBody = z
  .looseObject({
    messages: z.array(uiMessage).max(10_000),
    trigger: z.enum(["submit-message", "regenerate-message"]).default("submit-message"),
  })
  .superRefine((body, ctx) => {
    const last = body.messages.at(-1);
    if (body.trigger === "submit-message") {
      if (last?.role !== "user") return ctx.addIssue({ code: "custom", path: ["messages"], message: "the last message must be the user's" });
      if (!messageText(last).trim()) ctx.addIssue({ code: "custom", path: ["messages"], message: "the user's message has no text" });
    }
    if (last && messageText(last).length > MAX_MESSAGE_CHARS) ctx.addIssue({ code: "custom", path: ["messages"], message: `message text exceeds ${MAX_MESSAGE_CHARS} characters` });
  });
export type ChatRequestBody = z.infer<typeof chatRequestBody>;

const chatRequestFrame = z.object({
  type: z.literal(CHAT_MESSAGE_TYPES.USE_CHAT_REQUEST),
  id: z.string().min(1).max(200),
  init: z.looseObject({ method: z.literal("POST", { error: "a chat request's init.method must be POST" }), body: z.string() }),
});
export type ChatRequestFrame = z.infer<typeof chatRequestFrame>;
const byId = z.looseObject({ id: z.string().min(1).max(200) });
const toolCallId = z.string().min(1).max(200);
const approvalFrame = z.looseObject({ toolCallId, approved: z.boolean() });
/** The most a client tool's result may carry, as JSON. */
export const MAX_TOOL_OUTPUT_BYTES = 32 * 1024;
const toolResultFrame = z.looseObject({
  toolCallId,
  toolName: z.string().min(1).max(200),
  state: z.enum(["output-available", "output-error"]).optional(),
  errorText: z.string().max(2000).optional(),
  output: z.unknown().refine((o) => (JSON.stringify(o ?? null) ?? "").length <= MAX_TOOL_OUTPUT_BYTES, `a tool result is at most ${MAX_TOOL_OUTPUT_BYTES} bytes of JSON`),
});
export type ToolApprovalFrame = z.infer<typeof approvalFrame>;
export type ToolResultFrame = z.infer<typeof toolResultFrame>;

/** The frame a refusal goes out as: `{type:"error", error:{code, message, ...}}`. */
export const errorFrame = (error: AppError) => JSON.stringify({ type: "error", ...error.toJSON() });

/**
 * The protocol's own failure frame for a chat request, which `useAgentChat` shows as the turn's
 * error; `messageIds` and `outcome` let it settle exactly the send that was refused.
 */
export const chatErrorFrame = (id: string, error: AppError, messageIds?: string[]) =>
  JSON.stringify({
    type: CHAT_MESSAGE_TYPES.USE_CHAT_RESPONSE,
    id,
    body: error.message,
    done: true,
    error: true,
    outcome: "error",
    ...(messageIds && { messageIds }),
    ...error.toJSON().error,
  });

/** The ids of the user messages a request carried (what a client settles a refused send by). */
export const sentIds = (body: ChatRequestBody) => (body.trigger === "submit-message" ? [body.messages.at(-1)!.id] : undefined);

/** Frames of the protocol a client is not allowed to send here, and why. */
const REFUSED: Record<string, string> = {
  [CHAT_MESSAGE_TYPES.CHAT_MESSAGES]: "clients cannot write the thread's history; send a chat request",
  [CHAT_MESSAGE_TYPES.CHAT_CLEAR]: "clearing a thread is the owner's HTTP call: DELETE /api/v1/threads/{id}/messages",
  [MessageType.CF_AGENT_STATE]: "clients cannot set the agent's state",
  [MessageType.RPC]: "this agent has no callable methods",
};

export type ReadFrame =
  | { kind: "refuse"; reply: string }
  | { kind: "chat"; frame: ChatRequestFrame; body: ChatRequestBody }
  | { kind: "approval"; frame: ToolApprovalFrame }
  | { kind: "tool-result"; frame: ToolResultFrame }
  | { kind: "pass"; type: "cancel" | "stream-resume-request" | "stream-resume-ack" };

/**
 * The allow-list of frames a client may send: a chat request (POST, with a valid body), a cancel,
 * a stream resume request and its ack, a tool approval decision and a client tool's result (the
 * agent then checks those against what its server issued). Read with the SDK's own protocol parser; anything else, and
 * any text Postgres could not store, is refused with an error frame before the SDK sees it.
 */
export function readFrame(raw: string | ArrayBuffer | ArrayBufferView): ReadFrame {
  const refuse = (code: "invalid_frame" | "frame_too_large" | "unknown_frame" | "forbidden" | "validation_failed", message: string) =>
    ({ kind: "refuse", reply: errorFrame(new AppError(code, message)) }) as const;
  if (typeof raw !== "string") return refuse("invalid_frame", "binary frames are not supported");
  if (raw.length > MAX_FRAME_BYTES) return refuse("frame_too_large", `frame exceeds ${MAX_FRAME_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return refuse("invalid_frame", "frame is not valid JSON");
  }
  const type = (json as { type?: unknown } | null)?.type;
  if (!json || typeof json !== "object" || Array.isArray(json) || typeof type !== "string") return refuse("invalid_frame", "frame must be a JSON object with a string type");
  const event = parseProtocolMessage(raw);
  const allowed = event && ["chat-request", "cancel", "stream-resume-request", "stream-resume-ack", "tool-approval", "tool-result"].includes(event.type);
  if (!allowed) return REFUSED[type] ? refuse("forbidden", REFUSED[type]) : refuse("unknown_frame", `unknown frame type: ${type.slice(0, 100)}`);
  const id = typeof (json as { id?: unknown }).id === "string" ? ((json as { id: string }).id as string).slice(0, 200) : undefined;
  const chatRefusal = (code: "invalid_frame" | "validation_failed", message: string) =>
    ({ kind: "refuse", reply: id ? chatErrorFrame(id, new AppError(code, message)) : errorFrame(new AppError(code, message)) }) as const;
  const bad = findUnstorable(json);
  if (bad) return chatRefusal("validation_failed", describeUnstorable(bad, "frame"));
  if (event!.type === "tool-approval" || event!.type === "tool-result") {
    const parsed = event!.type === "tool-approval" ? approvalFrame.safeParse(json) : toolResultFrame.safeParse(json);
    if (!parsed.success) return refuse("invalid_frame", `invalid ${type}: ${z.prettifyError(parsed.error).replaceAll("\n", "; ")}`);
    return event!.type === "tool-approval" ? { kind: "approval", frame: parsed.data as ToolApprovalFrame } : { kind: "tool-result", frame: parsed.data as ToolResultFrame };
  }
  if (event!.type !== "chat-request") {
    if (event!.type !== "stream-resume-request" && !byId.safeParse(json).success) return refuse("invalid_frame", `a ${type} frame needs a string id`);
    return { kind: "pass", type: event!.type as "cancel" | "stream-resume-request" | "stream-resume-ack" };
  }
  const frame = chatRequestFrame.safeParse(json);
  if (!frame.success) return chatRefusal("invalid_frame", `invalid chat request: ${z.prettifyError(frame.error).replaceAll("\n", "; ")}`);
  let body: unknown;
  try {
    body = JSON.parse(frame.data.init.body);
  } catch {
    return chatRefusal("invalid_frame", "chat request body is not valid JSON");
  }
  // Of the transcript a client sends only its last message is kept (see ./gate.ts); older history may
  // hold text the server made storable after streaming it, and must not refuse every later turn.
  const messages = (body as { messages?: unknown } | null)?.messages;
  const badBody = findUnstorable(Array.isArray(messages) ? { ...(body as object), messages: messages.slice(-1) } : body);
  if (badBody) return chatRefusal("validation_failed", describeUnstorable(badBody, "chat request body"));
  const parsed = chatRequestBody.safeParse(body);
  if (!parsed.success) return chatRefusal("validation_failed", z.prettifyError(parsed.error).replaceAll("\n", "; "));
  return { kind: "chat", frame: frame.data, body: parsed.data };
}
