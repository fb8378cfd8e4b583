import type { Connection } from "agents";
import { CHAT_MESSAGE_TYPES, type ResumableStream } from "agents/chat";
import type { UIMessage } from "ai";
import type { FrameTaps } from "./http-stream.ts";

type Stream = Pick<ResumableStream, "activeRequestId" | "hasActiveStream" | "replayChunks">;

/**
 * Every (re)connecting client asks to resume; when no turn is streaming, it also gets the thread as
 * stored. A client whose connection dropped mid-reply would otherwise keep the half reply it had
 * seen, though the turn went on and finished here (the stock agent only resumes active streams).
 * `connect: true` lets the client keep messages it queued while offline.
 */
export function catchUp(connection: Connection, stream: Stream, messages: readonly UIMessage[]): void {
  if (stream.hasActiveStream() || !messages.length) return;
  connection.send(JSON.stringify({ type: CHAT_MESSAGE_TYPES.CHAT_MESSAGES, messages, connect: true }));
}

/** The active turn's stream over HTTP from its first chunk (replayed from storage), then live; null when idle. */
export function resumeStream(stream: Stream, taps: FrameTaps): ReadableStream<Uint8Array> | null {
  const requestId = stream.activeRequestId;
  if (!stream.hasActiveStream() || !requestId) return null;
  const { stream: readable, connection } = taps.open(requestId);
  stream.replayChunks(connection, requestId);
  return readable;
}
