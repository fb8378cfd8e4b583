import { CHAT_MESSAGE_TYPES } from "agents/chat";
import type { Connection } from "agents";

type ResponseFrame = { type: string; id?: string; body?: string; done?: boolean; error?: boolean };

const encoder = new TextEncoder();
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

  /** A stream of one request's frames, and a stand-in connection for the frames the agent sends the requester alone. */
  open(requestId: string) {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const listeners = this.#taps.get(requestId) ?? new Set();
    this.#taps.set(requestId, listeners);
    const stop = () => {
      listeners.delete(listen);
      if (!listeners.size) this.#taps.delete(requestId);
    };
    // A reader that went away (client disconnected) only stops this stream; the turn goes on.
    const write = (data: string) => void writer.write(sse(data)).catch(stop);
    const finish = (errorText?: string) => {
      stop();
      if (errorText !== undefined) write(JSON.stringify({ type: "error", errorText }));
      write("[DONE]");
      void writer.close().catch(() => {});
    };
    const listen = (f: ResponseFrame) => {
      if (f.error) return finish(f.body || "the turn failed");
      if (f.body) write(f.body);
      if (f.done) finish();
    };
    listeners.add(listen);
    const connection = { id: `http:${requestId}`, tags: [], send: (m: string) => this.deliver(m), close() {}, state: null, setState() {} } as unknown as Connection;
    return { stream: readable, connection, finish };
  }
}
