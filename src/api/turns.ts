import type { Context } from "hono";
import type { FrameError } from "../agent/frames";
import { AppError, type ErrorCode } from "../errors";

const UI_STREAM_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  "x-vercel-ai-ui-message-stream": "v1",
  "x-accel-buffering": "no",
};

/** An agent's turn stream as the AI SDK's UI message stream response (what DefaultChatTransport reads). */
export const streamTurn = (_c: Context, stream: ReadableStream<Uint8Array>) => new Response(stream, { headers: UI_STREAM_HEADERS });

/** The agent's turn refusal as the one error type, so HTTP callers get its status (429, 402, 422). */
export const turnError = (e: FrameError) => new AppError(e.code as ErrorCode, e.message, { retryAfter: e.retryAfter });
