import { AIChatAgent, type OnChatMessageOptions } from "@cloudflare/ai-chat";
import type { Connection, WSMessage } from "agents";
import { convertToModelMessages, isStepCount, streamText, type UIMessage } from "ai";
import { getConfig } from "../config";
import { withDb } from "../db/client";
import { applyMessageOps, listMessages, remainingBudget } from "../db/messages";
import { getThread } from "../db/threads";
import { AppError, toAppError } from "../errors";
import { flagsFor, type Flags } from "../flags";
import { outboxMonitor } from "../limits/outbox-monitor";
import { describeError, log } from "../observability/log";
import { metrics } from "../observability/metrics";
import { TurnTrace } from "../observability/turn-trace";
import { forwardedPrincipal } from "../auth/access";
import { userAuthority } from "../authority/user-authority";
import { closedSocket } from "./route";
import { chatErrorFrame, errorFrame, messageText, readFrame, type ChatRequestBody, type ChatRequestFrame, type FrameError } from "./frames";
import { chatModel } from "./model";
import { Outbox } from "./outbox";
import { upgradeStorage } from "./storage-schema";
import { agentTools } from "./tools";

const SYSTEM_PROMPT =
  "You are Threadline, a helpful assistant in a chat thread. Answer concisely. Use the tools you are given when they help, and say so when a tool fails.";

/** Metadata the agent stamps on every assistant message. */
export type AssistantMetadata = {
  model: string;
  offline: boolean;
  usage?: { inputTokens?: number; outputTokens?: number; totalTokens?: number };
};

export type HttpTurn = { ok: true; stream: ReadableStream<Uint8Array>; userMessageId: string } | { ok: false; error: FrameError };

type ResponseFrame = { type: string; id?: string; body?: string; done?: boolean; error?: boolean };

/** What the gate settled for a turn it let through: the user message it answers (a submit), its flags, its trace. */
type AdmittedTurn = { userMessageId?: string; flags: Flags; trace: TurnTrace };

/** The most history a woken agent loads from Postgres. */
const REHYDRATE_LIMIT = 10_000;

const encoder = new TextEncoder();
const sse = (data: string) => encoder.encode(`data: ${data}\n\n`);

/**
 * One Durable Object per chat thread (its name is the thread id). AIChatAgent keeps the thread's
 * hot transcript and streams; every durable write of that transcript also lands in an outbox that
 * drains to Postgres, the system of record. Every turn, over WebSocket or HTTP, passes one gate:
 * validation, the owner's token budget and turn rate limit, and server-owned history.
 */
export class ThreadAgent extends AIChatAgent<Env> {
  readonly outbox: Outbox;
  #retryAttempt = 0;
  #retryScheduled = false;
  #ownerId: string | undefined;
  /** Off while loading history from Postgres, which must not be written back to it. */
  #mirroring = true;
  #reportedBacklog = 0;
  /** Admissions run one at a time, so turns keep their arrival order through the gate's awaits. */
  #admissions: Promise<unknown> = Promise.resolve();
  /** Admitted turns, by request id, until their model call starts. */
  #admitted = new Map<string, AdmittedTurn>();
  /** Listeners for the frames of HTTP-driven and resumed turns, by request id. */
  #taps = new Map<string, Set<(frame: ResponseFrame) => void>>();
  #handle: (connection: Connection, message: WSMessage) => Promise<void>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Our SQLite tables reach this code's layout before anything reads them.
    upgradeStorage(ctx.storage);
    this.outbox = new Outbox(ctx.storage.sql, (ops) => withDb(this.env, (db) => applyMessageOps(db, this.name, ops)));
    this.sessions.subscribe((event) => {
      if (!this.#mirroring) return;
      this.outbox.record(event);
      // Deferred: the feed may dispatch inside the session's own write.
      queueMicrotask(() => void this.flushOutbox());
    });
    this.#handle = this.onMessage.bind(this) as (connection: Connection, message: WSMessage) => Promise<void>;
    const onConnect = this.onConnect.bind(this);
    this.onConnect = async (connection, ctx) => {
      await onConnect(connection, ctx);
      const p = forwardedPrincipal(ctx.request);
      if (p && "userId" in p) this.#reportSockets(p.userId);
    };
    const onClose = this.onClose.bind(this);
    this.onClose = async (connection, code, reason, wasClean) => {
      await onClose(connection, code, reason, wasClean);
      const user = connection.tags.find((t) => t.startsWith("user:"));
      if (user) this.#reportSockets(user.slice(5), connection.id);
    };
    this.onMessage = async (connection: Connection, message: WSMessage) => {
      if (this.#isRevoked(connection)) return connection.close(4401, "this connection's key was revoked");
      const read = readFrame(message);
      if (read.kind === "refuse") return connection.send(read.reply);
      if (read.kind === "pass") {
        await this.#handle(connection, message);
        if (read.type === "cf_agent_stream_resume_request") this.#catchUp(connection);
        return;
      }
      const trace = this.#trace(read.frame.id, read.frame.id, "ws", read.body.trigger);
      const admitted = await this.#admitInOrder(read.frame, read.body, trace);
      if ("error" in admitted) return connection.send(chatErrorFrame(read.frame.id, admitted.error));
      return this.#handle(connection, admitted.message);
    };
  }

  /**
   * Every HTTP request and WebSocket reaches a thread agent through the Worker's gate
   * (./route.ts), which names the caller and the thread's owner. A request without that, for a
   * thread of another owner, or to an instance that is a facet is refused before the SDK sees it.
   */
  override async fetch(request: Request): Promise<Response> {
    const notFound = () => new AppError("thread_not_found", "thread not found").toResponse();
    const principal = forwardedPrincipal(request);
    if (this.parentPath.length || !principal || (await this.#knownOwner(principal.ownerId)) !== principal.ownerId) return notFound();
    const socket = request.headers.get("upgrade")?.toLowerCase() === "websocket";
    const cap = getConfig(this.env).MAX_SOCKETS_PER_THREAD;
    if (socket && [...this.getConnections()].length >= cap) {
      if ("userId" in principal) this.#reportSockets(principal.userId);
      return closedSocket(4429, `too many open connections: at most ${cap} on this thread`);
    }
    return super.fetch(request);
  }

  /** The SDK's sub-agents (facets) are never used here: a `/sub/` path or header is refused, so no facet is ever made. */
  override async onBeforeSubAgent() {
    return new AppError("not_found", "no such agent").toResponse();
  }

  /** Tags kept with each socket through hibernation: whose it is and which key opened it (for revocation). */
  override getConnectionTags(_connection: Connection, ctx: { request: Request }): string[] {
    const p = forwardedPrincipal(ctx.request);
    return !p ? [] : "admin" in p ? ["admin"] : [`user:${p.userId}`, `key:${p.keyHash}`];
  }

  /** The owner in this object's storage; the first request's (the Worker checked it) when none is stored yet. */
  async #knownOwner(claimed: string): Promise<string> {
    this.#ownerId ??= await this.ctx.storage.get<string>("tl_owner");
    if (!this.#ownerId) await this.ctx.storage.put("tl_owner", (this.#ownerId = claimed));
    return this.#ownerId;
  }

  /**
   * Closes the sockets a user's authority revoked (a rotated key, a deleted user) and returns how
   * many of that user's sockets stay open. Frames from a revoked key are refused from here on.
   */
  async revoke(userId: string, keyHashes: string[] | "all", reason: string): Promise<number> {
    const tags = keyHashes === "all" ? [`user:${userId}`] : keyHashes.map((h) => `key:${h}`);
    if (keyHashes !== "all") for (const h of keyHashes) this.#revokedKeys.add(h);
    else this.#revokedUsers.add(userId);
    for (const tag of tags) for (const c of this.getConnections(tag)) c.close(4401, reason);
    return this.#openSockets(userId);
  }

  #openSockets(userId: string, without?: string) {
    return [...this.getConnections(`user:${userId}`)].filter((c) => c.id !== without).length;
  }

  /** The user's authority counts their sockets across threads (their cap); best effort, after the fact. */
  #reportSockets(userId: string, without?: string) {
    this.ctx.waitUntil(
      userAuthority(this.env, userId)
        .sockets(this.name, this.#openSockets(userId, without))
        .catch(() => {}),
    );
  }

  #revokedKeys = new Set<string>();
  #revokedUsers = new Set<string>();

  #isRevoked(connection: Connection) {
    return connection.tags.some((t) => (t.startsWith("key:") && this.#revokedKeys.has(t.slice(4))) || (t.startsWith("user:") && this.#revokedUsers.has(t.slice(5))));
  }

  override async onStart() {
    if (this.outbox.backlog > 0) await this.flushOutbox();
    else if (this.messages.length === 0) await this.#rehydrate();
  }

  /**
   * A thread agent that wakes with no transcript while Postgres has one (storage reset, a move,
   * history written elsewhere) loads it first, so the model and every client see the whole thread.
   */
  async #rehydrate() {
    try {
      const { messages } = await withDb(this.env, (db) => listMessages(db, this.name, { limit: REHYDRATE_LIMIT }));
      if (!messages.length) return;
      this.#mirroring = false;
      try {
        await super.persistMessages(messages.map(({ createdAt: _at, ...m }) => m as UIMessage));
      } finally {
        this.#mirroring = true;
      }
    } catch (err) {
      log("warn", "rehydrate_failed", { threadId: this.name, error: describeError(err) });
    }
  }

  /**
   * Every (re)connecting client asks to resume; when no turn is streaming, it also gets the thread as
   * stored. A client whose connection dropped mid-reply would otherwise keep the half reply it had
   * seen, though the turn went on and finished here (the stock agent only resumes active streams).
   * `connect: true` lets the client keep messages it queued while offline.
   */
  #catchUp(connection: Connection) {
    if (this._resumableStream.hasActiveStream() || !this.messages.length) return;
    connection.send(JSON.stringify({ type: "cf_agent_chat_messages", messages: this.messages, connect: true }));
  }

  /** What this thread has not yet written to Postgres. */
  async status() {
    return { outbox: { backlog: this.outbox.backlog, oldestAt: this.outbox.oldestAt }, streaming: this._resumableStream.hasActiveStream() };
  }

  /** The thread agent keeps no client-settable state: `cf_agent_state` frames from clients are refused. */
  override validateStateChange(_next: unknown, source: Connection | "server") {
    if (source !== "server") throw new AppError("forbidden", "clients cannot set the agent's state");
  }

  /** Frames no protocol layer claimed. */
  override async onMessage(connection: Connection, message: WSMessage) {
    const type = typeof message === "string" ? (JSON.parse(message) as { type?: string }).type : undefined;
    connection.send(errorFrame({ code: "unknown_frame", message: `unknown frame type: ${String(type)}` }));
  }

  override broadcast(msg: string | ArrayBuffer | ArrayBufferView, without?: string[]) {
    super.broadcast(msg, without);
    if (this.#taps.size && typeof msg === "string") this.#tap(msg);
  }

  #tap(msg: string) {
    try {
      const frame = JSON.parse(msg) as ResponseFrame;
      if (frame.type === "cf_agent_use_chat_response" && frame.id) for (const listen of this.#taps.get(frame.id) ?? []) listen(frame);
    } catch {
      /* not a frame of ours */
    }
  }

  /**
   * The turn gate. The server owns history: of what a client sends it keeps only the new user
   * message (text parts), appended to the transcript it already has; a regenerate drops the
   * trailing assistant reply. Forged or stale history is never persisted.
   */
  async #admit(frame: ChatRequestFrame, body: ChatRequestBody, trace: TurnTrace): Promise<{ message: string } | { error: FrameError }> {
    const admitted = await this.#gate(frame, body);
    trace.userId = this.#ownerId ?? null;
    if ("error" in admitted) {
      trace.end("refused", { code: admitted.error.code });
      return admitted;
    }
    const { message, flags, userMessageId } = admitted;
    if (flags.log_message_content && userMessageId) trace.content = messageText(body.messages.at(-1)!).slice(0, 2000);
    this.#admitted.set(frame.id, { userMessageId, flags, trace });
    return { message };
  }

  async #gate(frame: ChatRequestFrame, body: ChatRequestBody): Promise<{ message: string; flags: Flags; userMessageId?: string } | { error: FrameError }> {
    let messages: UIMessage[];
    if (body.trigger === "regenerate-message") {
      messages = [...this.messages];
      while (messages.at(-1)?.role === "assistant") messages.pop();
      if (!messages.length) return { error: { code: "validation_failed", message: "there is nothing to regenerate" } };
    } else {
      const sent = body.messages.at(-1)!;
      if (this.messages.some((m) => m.id === sent.id)) return { error: { code: "validation_failed", message: `message id ${sent.id} is already in this thread` } };
      const parts = sent.parts.filter((p) => p.type === "text" && typeof p.text === "string").map((p) => ({ type: "text" as const, text: p.text as string }));
      messages = [...this.messages, { id: sent.id, role: "user", parts }];
    }
    let flags: Flags;
    try {
      flags = await this.#checkLimits();
    } catch (err) {
      const e = toAppError(err);
      if (e.status >= 500) log("error", "turn_gate_failed", { threadId: this.name, error: describeError(err) });
      return { error: { code: e.code, message: e.message, retryAfter: e.retryAfter } };
    }
    const { messages: _client, trigger, ...rest } = body;
    return {
      message: JSON.stringify({ ...frame, init: { ...frame.init, body: JSON.stringify({ ...rest, messages, trigger }) } }),
      flags,
      userMessageId: trigger === "submit-message" ? messages.at(-1)!.id : undefined,
    };
  }

  #admitInOrder(frame: ChatRequestFrame, body: ChatRequestBody, trace: TurnTrace) {
    const admitted = this.#admissions.then(() => this.#admit(frame, body, trace));
    this.#admissions = admitted.catch(() => {});
    return admitted;
  }

  /**
   * The turn's flags (offline model allowed?), the token budget, then the per-user turn rate limit.
   * With Postgres down the budget is not checked and flags fall back: turns go on. Returns the flags.
   */
  async #checkLimits(): Promise<Flags> {
    const config = getConfig(this.env);
    const owner = await this.ownerId().catch(() => undefined);
    const flags = await flagsFor(this.env, { userId: owner, threadId: this.name });
    if (config.offline && !flags.offline_model_allowed)
      throw new AppError("model_unavailable", "no model is configured and the offline model is turned off (flag offline_model_allowed)");
    if (!owner) return flags;
    const remaining = await withDb(this.env, (db) => remainingBudget(db, owner)).catch((err) => {
      if (toAppError(err).code !== "database_unavailable") throw err;
      return null;
    });
    if (remaining !== null && remaining <= 0) throw new AppError("token_budget_exhausted", "your token budget is spent; no new turns can start");
    const taken = await userAuthority(this.env, owner).takeTurn(flags.turn_rate_limit, flags.turn_rate_window_seconds);
    if (!taken.ok) throw new AppError("rate_limited", `too many turns; retry in ${taken.retryAfterSeconds} s`, { retryAfter: taken.retryAfterSeconds });
    return flags;
  }

  /** The thread's owner, from Postgres once, then from this object's storage (it never changes). */
  async ownerId(): Promise<string> {
    this.#ownerId ??= await this.ctx.storage.get<string>("tl_owner");
    if (this.#ownerId) return this.#ownerId;
    const thread = await withDb(this.env, (db) => getThread(db, this.name));
    if (!thread) throw new AppError("thread_not_found", "thread not found");
    await this.ctx.storage.put("tl_owner", thread.userId);
    return (this.#ownerId = thread.userId);
  }

  /**
   * A turn driven over HTTP, through the same gate and chat handler as a WebSocket turn, so every
   * connected client sees it live. Returns the turn as an AI SDK UI message stream (SSE).
   */
  async httpTurn(input: { text: string; messageId?: string; httpRequestId?: string }): Promise<HttpTurn> {
    const requestId = crypto.randomUUID();
    const userMessageId = input.messageId ?? crypto.randomUUID();
    const body: ChatRequestBody = { messages: [{ id: userMessageId, role: "user", parts: [{ type: "text", text: input.text }] }], trigger: "submit-message" };
    const frame: ChatRequestFrame = { type: "cf_agent_use_chat_request", id: requestId, init: { method: "POST" } };
    const admitted = await this.#admitInOrder(frame, body, this.#trace(input.httpRequestId ?? requestId, requestId, "http", body.trigger));
    if ("error" in admitted) return { ok: false, error: admitted.error };
    const { stream, connection, finish } = this.#streamFor(requestId);
    this.ctx.waitUntil(this.#handle(connection, admitted.message).catch((err) => finish(toAppError(err).message)));
    return { ok: true, stream, userMessageId };
  }

  /** The active turn's stream from its first chunk (replayed from storage), then live; null when idle. */
  async resumeHttpStream(): Promise<ReadableStream<Uint8Array> | null> {
    const requestId = this._resumableStream.activeRequestId;
    if (!this._resumableStream.hasActiveStream() || !requestId) return null;
    const { stream, connection } = this.#streamFor(requestId);
    this._resumableStream.replayChunks(connection, requestId);
    return stream;
  }

  /** An SSE stream fed by the frames of one request, and a stand-in connection for frames sent to the requester alone. */
  #streamFor(requestId: string) {
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
    const connection = { id: `http:${requestId}`, send: (m: string) => this.#tap(m), close() {}, state: null, setState() {} } as unknown as Connection;
    return { stream: readable, connection, finish };
  }

  /** The user message of a turn and the assistant reply that followed it. */
  async turnMessages(userMessageId: string): Promise<UIMessage[]> {
    const i = this.messages.findIndex((m) => m.id === userMessageId);
    if (i < 0) return [];
    const reply = this.messages[i + 1];
    return reply?.role === "assistant" ? [this.messages[i]!, reply] : [this.messages[i]!];
  }

  /** Deletes this thread's storage (messages, streams, outbox): its thread is gone from Postgres. */
  async wipe() {
    this.outbox.discard();
    await this.#reportBacklog();
    await this.destroy();
  }

  override async persistMessages(messages: UIMessage[], excludeBroadcastIds?: string[], options?: { _deleteStaleRows?: boolean }) {
    await super.persistMessages(messages, excludeBroadcastIds, options);
    // Rows reach Postgres before the turn's terminal frame goes out; an outage only delays them.
    await this.flushOutbox();
  }

  /**
   * What the model sees for a turn. Overlapping submits are queued: every user message is stored
   * (and shown) when it arrives, but each turn answers its own message, in arrival order. So a
   * turn's context stops at its user message, with the replies to earlier turns moved before it.
   */
  #contextFor(userMessageId: string | undefined): UIMessage[] {
    const i = userMessageId ? this.messages.findIndex((m) => m.id === userMessageId) : -1;
    if (i < 0) return this.messages;
    const earlierReplies = this.messages.slice(i + 1).filter((m) => m.role === "assistant");
    return [...this.messages.slice(0, i), ...earlierReplies, this.messages[i]!];
  }

  #trace(requestId: string, turnId: string, transport: "ws" | "http", trigger: string) {
    return new TurnTrace(this.env, { requestId, turnId, threadId: this.name, transport, trigger });
  }

  override async onChatMessage(_onFinish: unknown, options?: OnChatMessageOptions) {
    const config = getConfig(this.env);
    const requestId = options?.requestId ?? crypto.randomUUID();
    const turn = this.#admitted.get(requestId);
    this.#admitted.delete(requestId);
    // A turn the gate did not see (the SDK continuing after a client-side tool result) is traced from here.
    const trace = turn?.trace ?? this.#trace(requestId, requestId, "ws", "continuation");
    const flags = turn?.flags ?? (await flagsFor(this.env, { userId: this.#ownerId, threadId: this.name }));
    const { model, id, offline } = chatModel(config, flags.chat_model);
    trace.model = id;
    trace.offline = offline;
    trace.userId ??= this.#ownerId ?? null;
    const tools = agentTools({ env: this.env, threadId: this.name, storage: this.ctx.storage, ownerId: () => this.ownerId(), flags });
    const result = streamText({
      model,
      system: SYSTEM_PROMPT,
      messages: await convertToModelMessages(this.#contextFor(turn?.userMessageId), { tools, ignoreIncompleteToolCalls: true }),
      tools,
      stopWhen: isStepCount(5),
      abortSignal: options?.abortSignal,
      onChunk: () => trace.chunk(),
      onToolExecutionEnd: (e) => trace.tool(e.toolCall.toolName, e.toolOutput, e.toolExecutionMs),
      onEnd: ({ totalUsage }) => trace.end("ok", { inputTokens: totalUsage.inputTokens, outputTokens: totalUsage.outputTokens }),
      onAbort: () => trace.end("aborted"),
      onError: ({ error }) => trace.end("error", { code: toAppError(error).code }),
    });
    return result.toUIMessageStreamResponse({
      messageMetadata: ({ part }): AssistantMetadata | undefined => {
        if (part.type === "start") return { model: id, offline };
        if (part.type === "finish")
          return {
            model: id,
            offline,
            usage: { inputTokens: part.totalUsage.inputTokens, outputTokens: part.totalUsage.outputTokens, totalTokens: part.totalUsage.totalTokens },
          };
        return undefined;
      },
      onError: (error) => {
        log("error", "model_error", { threadId: this.name, requestId, error: describeError(error) });
        return `The model request failed: ${error instanceof Error ? error.message : String(error)}`;
      },
    });
  }

  /** Drains the outbox now; on failure schedules a retry with jittered exponential backoff. */
  async flushOutbox(): Promise<void> {
    try {
      await this.outbox.flush();
      this.#retryAttempt = 0;
      if (this.#reportedBacklog) await this.#reportBacklog();
    } catch (err) {
      const error = toAppError(err);
      if (error.code === "thread_not_found") {
        // The thread was deleted in Postgres: its messages would be cascaded away anyway.
        this.outbox.discard();
        await this.#reportBacklog();
        return;
      }
      log("warn", "outbox_flush_failed", { threadId: this.name, code: error.code, backlog: this.outbox.backlog });
      await this.#reportBacklog();
      if (!this.#retryScheduled) {
        this.#retryScheduled = true;
        const seconds = Math.min(300, 2 ** this.#retryAttempt++) * (0.5 + Math.random() / 2);
        await this.schedule(Math.max(1, Math.round(seconds)), "retryOutbox");
      }
    }
  }

  /** Tells the service-wide monitor (read by /health) this thread's backlog; best effort. */
  async #reportBacklog() {
    const rows = this.outbox.backlog;
    if (rows === this.#reportedBacklog) return;
    metrics(this.env).write({ kind: "outbox", threadId: this.name, backlog: rows });
    await outboxMonitor(this.env)
      .report(this.name, rows)
      .then(() => (this.#reportedBacklog = rows))
      .catch(() => {});
  }

  async retryOutbox() {
    this.#retryScheduled = false;
    await this.flushOutbox();
  }
}
