import { UI_MESSAGE_STREAM_HEADERS } from "ai";
import type { Context } from "hono";
import { AppError, type Refusal } from "../errors.ts";

/** An agent's turn stream as the AI SDK's UI message stream response (what DefaultChatTransport reads). */
export const streamTurn = (_c: Context, stream: ReadableStream<Uint8Array>) => new Response(stream, { headers: UI_MESSAGE_STREAM_HEADERS });

/** The agent's turn refusal as the one error type, so HTTP callers get its status (429, 402, 422). */
export const turnError = (r: Refusal) => AppError.fromRefusal(r);
