import { TurnQueue } from "agents/chat";
import type { UIMessage } from "ai";
import { estimateTokens } from "../authority/budget.ts";
import { getConfig } from "../config.ts";
import { AppError, toAppError } from "../errors.ts";
import { flagsFor, type Flags } from "../flags/index.ts";
import { messageText } from "../messages.ts";
import { describeError, log } from "../observability/log.ts";
import type { TurnTrace } from "../observability/turn-trace.ts";
import { Admissions, type Admission } from "./admissions.ts";
import { contextFor } from "./context.ts";
import { turnBudget } from "./context-budget.ts";
import type { ChatRequestBody, ChatRequestFrame } from "./frame-policy.ts";

/**
 * The server owns history: of what a client sends it keeps only the new user message's text
 * parts, appended to the transcript it already has; a regenerate drops the trailing assistant
 * reply. Forged or stale history in the request is never persisted. Pure.
 */
export function serverTranscript(stored: readonly UIMessage[], body: ChatRequestBody): { messages: UIMessage[]; userMessageId?: string } | AppError {
  if (body.trigger === "regenerate-message") {
    const messages = [...stored];
    while (messages.at(-1)?.role === "assistant") messages.pop();
    if (!messages.length) return new AppError("validation_failed", "there is nothing to regenerate");
    return { messages };
  }
  const sent = body.messages.at(-1)!;
  if (stored.some((m) => m.id === sent.id)) return new AppError("validation_failed", `message id ${sent.id} is already in this thread`);
  const parts = sent.parts.filter((p) => p.type === "text" && typeof p.text === "string").map((p) => ({ type: "text" as const, text: p.text as string }));
  return { messages: [...stored, { id: sent.id, role: "user", parts }], userMessageId: sent.id };
}

/** The tokens a turn reserves at admission: its context, estimated, and the longest reply it may write. */
export function reservationFor(messages: readonly UIMessage[], maxOutputTokens: number, systemChars: number): number {
  const chars = messages.reduce((n, m) => n + JSON.stringify(m.parts).length, systemChars);
  return estimateTokens(chars) + maxOutputTokens;
}

/** What the gate settled for a turn it let through, until its model call starts. `reported`, `searchVersion`: see Admissions; `reserved`: the tokens its admission reserved. */
export type Admitted = Pick<Admission, "reported" | "searchVersion"> & { userMessageId?: string; flags: Flags; trace: TurnTrace; kind: "turn" | "regenerate"; reserved: number };

type GateHost = {
  env: Env;
  threadId: () => string;
  messages: () => readonly UIMessage[];
  ownerId: () => Promise<string>;
  systemChars: number;
  /** How many WebSocket clients the thread has (the requester's included when it is one). */
  sockets: () => number;
};

/**
 * The turn gate of one thread: admissions one at a time (the SDK's TurnQueue), so turns keep their
 * arrival order through the awaits; each gets the server's transcript, its flags and one admission
 * call, and comes out as the chat frame the protocol then runs, or as the refusal.
 *
 * The frame carries the transcript the protocol is to keep: for a submit, the stored one and the new
 * message. The protocol parses all of it, compares every message with the stored one, and sends it
 * to the other clients as the thread's messages, twice. With no other client on the thread the frame
 * carries the new message alone, which the protocol appends (a message it does not know deletes
 * nothing): a turn's work no longer grows with the thread (bench/README.md, "Turns"). A client that
 * connects in between gets the whole thread again as the turn ends.
 */
export class TurnGate {
  readonly #queue = new TurnQueue();
  readonly #admitted = new Map<string, Admitted>();
  readonly #admissions: Admissions;

  private readonly host: GateHost;
  constructor(host: GateHost) {
    this.host = host;
    this.#admissions = new Admissions(host.env);
  }

  /** A client connected with this key: its first turn may start on a lease taken now. */
  async prefetch(keyHash: string | undefined): Promise<void> {
    const ownerId = await this.host.ownerId().catch(() => undefined);
    if (!ownerId || !keyHash) return;
    const { env } = this.host;
    const flags = await flagsFor(env, { userId: ownerId, threadId: this.host.threadId() });
    const cap = turnBudget(getConfig(env), flags);
    const reserve = Math.min(reservationFor(contextFor(this.host.messages(), undefined), flags.turn_max_output_tokens, this.host.systemChars), cap);
    await this.#admissions.prefetch({ ownerId, threadId: this.host.threadId(), keyHash, flags, reserve, cap });
  }

  /** The thread's lease stops covering turns (the owner's authority says so). */
  dropLease() {
    this.#admissions.drop();
  }

  /** `fromSocket`: the request came on one of the thread's WebSockets (else over HTTP). */
  async admit(frame: ChatRequestFrame, body: ChatRequestBody, trace: TurnTrace, keyHash: string | undefined, fromSocket: boolean): Promise<string | AppError> {
    const result = await this.#queue.enqueue(frame.id, () => this.#admit(frame, body, trace, keyHash, fromSocket));
    const outcome = result.status === "completed" ? result.value : new AppError("conflict", "the thread was reset while this turn waited");
    if (outcome instanceof AppError) {
      if (outcome.status >= 500) log("error", "turn_gate_failed", { threadId: this.host.threadId(), code: outcome.code, error: describeError(outcome.cause ?? outcome) });
      trace.end("refused", { code: outcome.code });
    }
    return outcome;
  }

  /** The admission of a turn the protocol now runs (once). */
  take(requestId: string): Admitted | undefined {
    const turn = this.#admitted.get(requestId);
    this.#admitted.delete(requestId);
    return turn;
  }

  async #admit(frame: ChatRequestFrame, body: ChatRequestBody, trace: TurnTrace, keyHash: string | undefined, fromSocket: boolean): Promise<string | AppError> {
    const { env } = this.host;
    const threadId = this.host.threadId();
    const transcript = serverTranscript(this.host.messages(), body);
    const ownerId = await this.host.ownerId().catch(() => undefined);
    trace.userId = ownerId ?? null;
    if (transcript instanceof AppError) return transcript;
    if (!ownerId) return new AppError("thread_not_found", "thread not found");
    const flags = await flagsFor(env, { userId: ownerId, threadId });
    // A long thread's context is compacted to its model's budget before the model sees it: never reserve more.
    const cap = turnBudget(getConfig(env), flags);
    const reserve = Math.min(reservationFor(contextFor(transcript.messages, transcript.userMessageId), flags.turn_max_output_tokens, this.host.systemChars), cap);
    const admission = await this.#admissions
      .admit({ ownerId, threadId, turnId: frame.id, keyHash, flags, reserve, cap })
      .catch((err: unknown): Admission => ({ refused: toAppError(err), leased: false }));
    if (admission.refused) return admission.refused;
    trace.admission = admission.leased ? "lease" : "authority";
    if (flags.log_message_content && transcript.userMessageId) trace.content = messageText(body.messages.at(-1)!).slice(0, 2000);
    this.#admitted.set(frame.id, {
      userMessageId: transcript.userMessageId,
      flags,
      trace,
      kind: body.trigger === "regenerate-message" ? "regenerate" : "turn",
      reported: admission.reported,
      searchVersion: admission.searchVersion,
      reserved: reserve,
    });
    const { messages: _client, trigger, ...rest } = body;
    const watched = this.host.sockets() > (fromSocket ? 1 : 0);
    const messages = transcript.userMessageId && !watched ? transcript.messages.slice(-1) : transcript.messages;
    return JSON.stringify({ ...frame, init: { ...frame.init, body: JSON.stringify({ ...rest, messages, trigger }) } });
  }
}
