import { CHAT_MESSAGE_TYPES } from "agents/chat";
import { AppError, toAppError } from "../errors.ts";
import { TurnTrace } from "../observability/turn-trace.ts";
import type { ChatRequestBody, ChatRequestFrame } from "./frame-policy.ts";
import type { TurnGate } from "./gate.ts";
import type { ChatProtocol, FrameTaps, Send } from "./http-stream.ts";
import type { Answers, Decisions } from "./interactions.ts";
import type { OutboxSync } from "./outbox-sync.ts";
import type { Owner } from "./owner.ts";

type Refusal = ReturnType<AppError["toRefusal"]>;
export type HttpTurn = { ok: true; stream: ReadableStream<Uint8Array>; userMessageId?: string } | { ok: false; error: Refusal };

type Host = {
  chat: ChatProtocol;
  taps: FrameTaps;
  gate: TurnGate;
  sync: OutboxSync;
  owner: Owner;
  decisions: Decisions;
  env: Env;
  threadId: () => string;
  waitUntil: (p: Promise<unknown>) => void;
};

/**
 * A thread's work driven over HTTP, through the same gate and chat protocol as a WebSocket client's
 * (so every connected client sees it live): turns, stops, and decisions and tool results, each
 * answered with the turn it runs as an AI SDK UI message stream (SSE) fed by the agent's frames.
 */
export class HttpTurns {
  /** Turns stopped before the SDK started them (still queued, or admitted a moment ago): they stop as they start. */
  readonly #cancelled = new Set<string>();
  /** An HTTP caller waiting for the continuation its decision or tool result starts (see interact). */
  #continuationWaiter: ((requestId: string) => void) | undefined;
  readonly #send: Send;

  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
    this.#send = host.taps.sender(host.chat);
  }

  async turn(input: {
    text?: string;
    messageId?: string;
    trigger?: "submit-message" | "regenerate-message";
    httpRequestId?: string;
    keyHash?: string;
    ownerId: string;
  }): Promise<HttpTurn> {
    const { gate, taps } = this.host;
    await this.host.owner.claim(input.ownerId);
    const requestId = crypto.randomUUID();
    const trigger = input.trigger ?? "submit-message";
    const messages = trigger === "submit-message" ? [{ id: input.messageId ?? crypto.randomUUID(), role: "user" as const, parts: [{ type: "text", text: input.text ?? "" }] }] : [];
    const body: ChatRequestBody = { messages, trigger };
    const frame: ChatRequestFrame = { type: CHAT_MESSAGE_TYPES.USE_CHAT_REQUEST, id: requestId, init: { method: "POST", body: "" } };
    const trace = new TurnTrace(this.host.env, { requestId: input.httpRequestId ?? requestId, turnId: requestId, threadId: this.host.threadId(), transport: "http", trigger });
    const admitted = await gate.admit(frame, body, trace, input.keyHash, false);
    if (admitted instanceof AppError) return { ok: false, error: admitted.toRefusal() };
    // A client gone before the reply began (useChat's stop(), a closed tab) stops the turn; one gone later may come back to resume it.
    const { stream, connection, finish } = taps.open(requestId, (begun) => void (begun || this.cancel(requestId)));
    this.host.waitUntil(this.host.sync.during(() => this.host.chat(connection, admitted)).catch((err) => finish(toAppError(err).message)));
    return { ok: true, stream, userMessageId: messages[0]?.id };
  }

  /** Stops a turn as a WebSocket cancel does. False when there is none. */
  async cancel(requestId: string | undefined): Promise<boolean> {
    if (!requestId) return false;
    this.#cancelled.add(requestId);
    await this.#send("cancel", { type: CHAT_MESSAGE_TYPES.CHAT_REQUEST_CANCEL, id: requestId });
    return true;
  }

  /** Whether the turn was stopped before it started (once: it is forgotten). */
  cancelled(requestId: string): boolean {
    return this.#cancelled.delete(requestId);
  }

  /** The SDK started a continuation: the caller waiting for it gets its stream. */
  continued(requestId: string): void {
    this.#continuationWaiter?.(requestId);
  }

  /** Decisions and client tool results: checked as over WebSocket, applied through the protocol, and the turn they continue streamed back (null when nothing continues). */
  async interact(input: Answers & { by: string; echoes?: "skip" }): Promise<{ ok: true; stream: ReadableStream<Uint8Array> | null } | { ok: false; error: Refusal }> {
    const { decisions } = this.host;
    if (input.echoes === "skip") {
      Object.assign(input, decisions.waiting(input));
      if (!input.decisions?.length && !input.results?.length)
        return { ok: false, error: new AppError("validation_failed", "nothing in this request answers a tool call that is waiting").toRefusal() };
    }
    try {
      for (const d of input.decisions ?? []) await decisions.check({ decision: { ...d, by: input.by } });
      for (const r of input.results ?? []) await decisions.check({ result: r });
    } catch (err) {
      return { ok: false, error: toAppError(err).toRefusal() };
    }
    let opened: ((stream: ReadableStream<Uint8Array>) => void) | undefined;
    const continued = new Promise<ReadableStream<Uint8Array>>((r) => (opened = r));
    this.#continuationWaiter = (requestId) => {
      this.#continuationWaiter = undefined;
      opened!(this.host.taps.open(requestId).stream);
    };
    const applied = this.#send("interact", ...decisions.frames(input));
    // The continuation starts once every call of the step has its answer; if none does, there is nothing to stream.
    const stream = await Promise.race([continued, applied.then(() => new Promise<null>((r) => setTimeout(() => r(null), 2000)))]);
    if (!stream) this.#continuationWaiter = undefined;
    return { ok: true, stream };
  }
}
