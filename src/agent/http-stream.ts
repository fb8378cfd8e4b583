import { CHAT_MESSAGE_TYPES } from "agents/chat";
import type { Connection, WSMessage } from "agents";

/** The SDK's chat protocol handler: AIChatAgent's `onMessage`, behind the agent's frame allow-list. */
export type ChatProtocol = (connection: Connection, message: WSMessage) => Promise<void>;
/** Frames of the server's own (`what` says why) through the chat protocol, in order, from one stand-in connection. */
export type Send = (what: string, ...frames: object[]) => Promise<void>;

type ResponseFrame = { type: string; id?: string; body?: string; done?: boolean; error?: boolean };

const encoder = new TextEncoder();
/** The chunks a reply opens with before it says or calls anything. */
const PREAMBLE = new Set(["start", "start-step", "message-metadata"]);
const chunkType = (body: string) => {
  try {
    return (JSON.parse(body) as { type?: unknown }).type;
  } catch {
    return undefined;
  }
};
const sse = (data: string) => encoder.encode(`data: ${data}\n\n`);

/**
 * HTTP turns as AI SDK UI message streams (SSE), fed by the same response frames the agent sends
 * its WebSocket clients: every frame the agent broadcasts passes `deliver`, and each open stream
 * takes those of its request id. Several readers may follow one turn (a resume beside the original).
 */
export class FrameTaps {
  #taps = new Map<string, Set<(frame: ResponseFrame) => void>>();

  get active(): boolean {
    return this.#taps.size > 0;
  }

  deliver(msg: string): void {
    if (!this.#taps.size) return;
    let frame: ResponseFrame;
    try {
      frame = JSON.parse(msg) as ResponseFrame;
    } catch {
      return;
    }
    if (frame.type === CHAT_MESSAGE_TYPES.USE_CHAT_RESPONSE && frame.id) for (const listen of this.#taps.get(frame.id) ?? []) listen(frame);
  }

  /**
   * A stream of one request's frames, and a stand-in connection for the frames the agent sends the
   * requester alone. `onCancel` hears of a reader that went away, and whether the reply had begun
   * (its first words or tool call) by then.
   */
  open(requestId: string, onCancel?: (begun: boolean) => void) {
    let out!: ReadableStreamDefaultController<Uint8Array>;
    let open = true;
    let begun = false;
    const readable = new ReadableStream<Uint8Array>({
      start: (c) => void (out = c),
      cancel: () => {
        open = false;
        stop();
        onCancel?.(begun);
      },
    });
    const listeners = this.#taps.get(requestId) ?? new Set();
    this.#taps.set(requestId, listeners);
    const stop = () => {
      listeners.delete(listen);
      if (!listeners.size) this.#taps.delete(requestId);
    };
    const write = (data: string) => void (open && out.enqueue(sse(data)));
    const finish = (errorText?: string) => {
      stop();
      if (errorText !== undefined) write(JSON.stringify({ type: "error", errorText }));
      write("[DONE]");
      if (open) out.close();
      open = false;
    };
    const listen = (f: ResponseFrame) => {
      if (f.error) return finish(f.body || "the turn failed");
      if (f.body) {
        begun ||= !PREAMBLE.has(chunkType(f.body) as string);
        write(f.body);
      }
      if (f.done) finish();
    };
    listeners.add(listen);
    const connection = { id: `http:${requestId}`, tags: [], send: (m: string) => this.deliver(m), close() {}, state: null, setState() {} } as unknown as Connection;
    return { stream: readable, connection, finish };
  }

  /** A connection for frames the server sends the protocol itself: what the protocol answers on it reaches the open streams. */
  standIn(what: string): Connection {
    return {
      id: `http:${what}:${crypto.randomUUID()}`,
      tags: [],
      uri: null,
      send: (m: string) => this.deliver(m),
      close() {},
      state: null,
      setState() {},
    } as unknown as Connection;
  }

  /** The server's own frames through `chat`, from one stand-in connection. */
  sender(chat: ChatProtocol): Send {
    return async (what, ...frames) => {
      const standIn = this.standIn(what);
      for (const f of frames) await chat(standIn, JSON.stringify(f));
    };
  }
}
