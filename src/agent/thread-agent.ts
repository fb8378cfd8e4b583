import { AIChatAgent, type ChatResponseResult, type OnChatMessageOptions } from "@cloudflare/ai-chat";
import type { Connection, WSMessage } from "agents";
import { CHAT_MESSAGE_TYPES, clearChatTerminal } from "agents/chat";
import type { UIMessage } from "ai";
import { forwardedPrincipal } from "../auth/access";
import { getConfig } from "../config";
import { withDb } from "../db/client";
import { applyMessageOps, listMessages } from "../db/messages";
import { getThread } from "../db/threads";
import { AppError, toAppError } from "../errors";
import { flagsFor } from "../flags";
import { describeError, log } from "../observability/log";
import { TurnTrace } from "../observability/turn-trace";
import { ThreadMcpServers } from "../mcp/client";
import type { AssistantMetadata } from "../messages";
import { toStorable } from "../validation/storable";
import { searchDeps } from "../search/worker";
import { contextFor } from "./context";
import { ContextWindow } from "./context-window";
import { MessageIndexer } from "./message-index";
import { Titles } from "./titles";
import { Approvals } from "./approvals";
import { chatErrorFrame, errorFrame, readFrame, type ChatRequestBody, type ChatRequestFrame, type ToolResultFrame } from "./frame-policy";
import { checkDecision, checkToolResult, toolCall } from "./interactions";
import { connectionTags, keyOf, Sockets, userOf } from "./connections";
import { createToolsFromClientSchemas } from "agents/chat";
import { TurnGate } from "./gate";
import { FrameTaps } from "./http-stream";
import { Outbox } from "./outbox";
import { OutboxSync } from "./outbox-sync";
import { closedSocket } from "./route";
import { upgradeStorage } from "./storage-schema";
import { isServerTool } from "./tools";
import { runTurn, SYSTEM_PROMPT } from "./turn";

export type HttpTurn = { ok: true; stream: ReadableStream<Uint8Array>; userMessageId?: string } | { ok: false; error: ReturnType<AppError["toRefusal"]> };

type FrameHandler = (connection: Connection, message: WSMessage) => Promise<void>;

/** The most history a woken agent loads from Postgres. */
const REHYDRATE_LIMIT = 10_000;

/**
 * One Durable Object per chat thread (its name is the thread id). AIChatAgent keeps the thread's
 * hot transcript and streams; every durable write of it also lands in an outbox that drains to
 * Postgres, the system of record, in the background. This class wires the parts: the frame
 * allow-list (./frame-policy), the gate (./gate: server-owned transcript, one admission call to the
 * owner's authority), the model call (./turn), HTTP turns as SSE (./http-stream), the sockets
 * (./connections) and the outbox (./outbox, ./outbox-sync).
 */
export class ThreadAgent extends AIChatAgent<Env> {
  readonly outbox: Outbox;
  readonly #sync: OutboxSync;
  readonly #taps = new FrameTaps();
  readonly #gate: TurnGate;
  readonly #sockets: Sockets;
  readonly approvals: Approvals;
  readonly #window: ContextWindow;
  readonly #index: MessageIndexer;
  readonly #titles: Titles;
  readonly #mcpServers: ThreadMcpServers;
  /** Turns do not wait for MCP connections the SDK restores on wake: a tool call waits for its own server (src/mcp/client.ts). */
  override waitForMcpConnections = false;
  /** An HTTP caller waiting for the continuation its decision or tool result starts (see #interact). */
  #continuationWaiter: ((requestId: string) => void) | undefined;
  #ownerId: string | undefined;
  /** Off while loading history from Postgres, which must not be written back to it. */
  #mirroring = true;
  #onSocketClosed: (() => void) | undefined;
  /** Turns stopped before the SDK started them (still queued, or admitted a moment ago): they stop as they start. */
  readonly #cancelled = new Set<string>();
  /**
   * Three `onMessage`s: the class method below takes the frames no protocol layer claimed;
   * AIChatAgent's constructor puts its chat protocol handler over it (kept here as #chatProtocol);
   * this constructor puts the frame allow-list over that, so every frame is checked first.
   */
  readonly #chatProtocol: FrameHandler;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Our SQLite tables reach this code's layout before anything reads them.
    upgradeStorage(ctx.storage);
    // What reached Postgres is then indexed for search, in the background (./message-index.ts).
    this.outbox = new Outbox(ctx.storage.sql, (ops) => withDb(this.env, (db) => applyMessageOps(db, this.name, ops)).then(() => void this.#index.written(ops)), () => this.name);
    // `retryOutbox` is the name the scheduler stores: it must keep it.
    this.#sync = new OutboxSync(this.outbox, { env, threadId: () => this.name, schedule: (s) => this.schedule(s, "retryOutbox").then(() => {}) });
    this.sessions.subscribe((event) => {
      if (!this.#mirroring) return;
      this.outbox.record(event);
      if (event.type === "clear") this.#window.clear();
      // Deferred: the feed may dispatch inside the session's own write. Not awaited: Postgres is off the turn's path.
      queueMicrotask(() => this.#sync.request());
    });
    this.approvals = new Approvals(ctx.storage.sql, () => this.name);
    const thread = { env, threadId: () => this.name, ownerId: () => this.ownerId() };
    this.#window = new ContextWindow({ ...thread, sql: ctx.storage.sql });
    // `retryIndex` is the name the scheduler stores: it must keep it.
    this.#index = new MessageIndexer({ ...thread, deps: () => searchDeps(env), window: this.#window, schedule: (s) => this.schedule(s, "retryIndex").then(() => {}) });
    this.#titles = new Titles({ ...thread, storage: ctx.storage, broadcast: (frame) => this.broadcast(frame), waitUntil: (p) => ctx.waitUntil(p) });
    this.#mcpServers = new ThreadMcpServers({ env, threadId: () => this.name, mcp: this.mcp, storage: ctx.storage });
    this.#gate = new TurnGate({ env, threadId: () => this.name, messages: () => this.messages, ownerId: () => this.ownerId(), systemChars: SYSTEM_PROMPT.length });
    this.#sockets = new Sockets({ env, threadId: () => this.name, connections: (tag) => this.getConnections(tag), waitUntil: (p) => ctx.waitUntil(p) });
    this.#chatProtocol = this.onMessage.bind(this) as FrameHandler;
    this.onMessage = (connection: Connection, message: WSMessage) => this.#onFrame(connection, message);
    const onConnect = this.onConnect.bind(this);
    this.onConnect = async (connection, c) => {
      await onConnect(connection, c);
      const p = forwardedPrincipal(c.request);
      if (p && "userId" in p) this.#sockets.report(p.userId);
    };
    const onClose = this.onClose.bind(this);
    this.onClose = async (connection, code, reason, wasClean) => {
      await onClose(connection, code, reason, wasClean);
      const user = userOf(connection);
      if (user) this.#sockets.report(user, connection.id);
      this.#onSocketClosed?.();
    };
  }

  /**
   * Every request reaches a thread agent through the Worker's gate (./route.ts), which names the
   * caller and the thread's owner. A request without that, for a thread of another owner, or to an
   * instance that is a facet is refused before the SDK sees it; so is a socket over the thread's cap.
   */
  override async fetch(request: Request): Promise<Response> {
    const principal = forwardedPrincipal(request);
    if (this.parentPath.length || !principal || (await this.#knownOwner(principal.ownerId)) !== principal.ownerId)
      return new AppError("thread_not_found", "thread not found").toResponse();
    const cap = getConfig(this.env).MAX_SOCKETS_PER_THREAD;
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket" && this.#sockets.count >= cap) {
      if ("userId" in principal) this.#sockets.report(principal.userId);
      return closedSocket(4429, `too many open connections: at most ${cap} on this thread`);
    }
    return super.fetch(request);
  }

  /** The SDK's sub-agents (facets) are never used here: a `/sub/` path or header is refused, so no facet is ever made. */
  override async onBeforeSubAgent() {
    return new AppError("not_found", "no such agent").toResponse();
  }

  /** Every MCP server's requests carry its owner's sealed token, or none: never the SDK's OAuth flow. */
  override createMcpOAuthProvider() {
    return this.#mcpServers.tokenAuth();
  }

  override getConnectionTags(_connection: Connection, c: { request: Request }): string[] {
    return connectionTags(c.request);
  }

  override async onStart() {
    const { backlog, nextRetryAt } = this.outbox.state;
    // A retry already scheduled keeps its backoff; waking does not start it over.
    if (backlog > 0 && (nextRetryAt === null || nextRetryAt <= Date.now())) await this.#sync.flush();
    else if (backlog === 0 && this.messages.length === 0) await this.#rehydrate();
  }

  async #onFrame(connection: Connection, message: WSMessage) {
    if (this.#sockets.isRevoked(connection)) return connection.close(4401, "this connection's key was revoked");
    const read = readFrame(message);
    if (read.kind === "refuse") return connection.send(read.reply);
    if (read.kind === "pass") {
      await this.#chatProtocol(connection, message);
      if (read.type === "stream-resume-request") this.#catchUp(connection);
      return;
    }
    if (read.kind === "approval" || read.kind === "tool-result") {
      const user = userOf(connection);
      const refused = await this.#check(read.kind === "approval" ? { decision: { ...read.frame, by: user } } : { result: read.frame }).catch((e: unknown) => e);
      if (refused) return connection.send(errorFrame(toAppError(refused)));
      return this.#sync.during(() => this.#chatProtocol(connection, message));
    }
    const trace = this.#trace(read.frame.id, read.frame.id, "ws", read.body.trigger);
    const admitted = await this.#gate.admit(read.frame, read.body, trace, keyOf(connection));
    if (admitted instanceof AppError) return connection.send(chatErrorFrame(read.frame.id, admitted, sentIds(read.body)));
    return this.#sync.during(() => this.#chatProtocol(connection, admitted));
  }

  /** The SDK's handler for a turn the protocol runs (a submit or regenerate the gate admitted). */
  override async onChatMessage(_onFinish: unknown, options?: OnChatMessageOptions) {
    const requestId = options?.requestId ?? crypto.randomUUID();
    if (this.#cancelled.delete(requestId)) this.abortRequest(requestId);
    const turn = this.#gate.take(requestId);
    const ownerId = await this.ownerId();
    // A turn the gate did not see (the SDK continuing a turn itself) is traced from here.
    const trace = turn?.trace ?? this.#trace(requestId, requestId, "ws", "continuation");
    trace.userId ??= ownerId;
    if (!turn && options?.continuation) this.#continuationWaiter?.(requestId);
    const flags = turn?.flags ?? (await flagsFor(this.env, { userId: ownerId, threadId: this.name }));
    // The model's context within its budget: the oldest part summarized when needed, from this object's storage alone.
    const messages = contextFor(this.messages, turn?.userMessageId);
    const window = await this.#window.prepare({ messages, flags, turnId: requestId });
    return runTurn({
      env: this.env,
      threadId: this.name,
      ownerId,
      turnId: requestId,
      kind: turn?.kind ?? "continuation",
      ...window,
      compact: () => this.#window.prepare({ messages, flags, turnId: requestId, force: true }),
      flags,
      trace,
      // Tools the client declared and runs itself: never under the name of one of the server's own.
      clientTools: options?.clientTools ? createToolsFromClientSchemas(options.clientTools.filter((t) => !isServerTool(t.name))) : undefined,
      onApprovalRequest: (a) => this.#issueApproval(a, requestId, flags.approval_ttl_seconds),
      mcp: await this.#mcpServers.tools(ownerId, flags),
      storage: this.ctx.storage,
      abortSignal: options?.abortSignal,
    });
  }

  /**
   * A turn driven over HTTP, through the same gate and chat handler as a WebSocket turn, so every
   * connected client sees it live. Returns the turn as an AI SDK UI message stream (SSE).
   */
  async httpTurn(input: { text?: string; messageId?: string; trigger?: "submit-message" | "regenerate-message"; httpRequestId?: string; keyHash?: string; ownerId: string }): Promise<HttpTurn> {
    await this.#knownOwner(input.ownerId);
    const requestId = crypto.randomUUID();
    const trigger = input.trigger ?? "submit-message";
    const messages = trigger === "submit-message" ? [{ id: input.messageId ?? crypto.randomUUID(), role: "user" as const, parts: [{ type: "text", text: input.text ?? "" }] }] : [];
    const body: ChatRequestBody = { messages, trigger };
    const frame: ChatRequestFrame = { type: CHAT_MESSAGE_TYPES.USE_CHAT_REQUEST, id: requestId, init: { method: "POST", body: "" } };
    const admitted = await this.#gate.admit(frame, body, this.#trace(input.httpRequestId ?? requestId, requestId, "http", trigger), input.keyHash);
    if (admitted instanceof AppError) return { ok: false, error: admitted.toRefusal() };
    // A client gone before the reply began (useChat's stop(), a closed tab) stops the turn; one gone later may come back to resume it.
    const { stream, connection, finish } = this.#taps.open(requestId, (begun) => void (begun || this.cancelTurn(requestId)));
    this.ctx.waitUntil(this.#sync.during(() => this.#chatProtocol(connection, admitted)).catch((err) => finish(toAppError(err).message)));
    return { ok: true, stream, userMessageId: messages[0]?.id };
  }

  /** The active turn's stream from its first chunk (replayed from storage), then live; null when idle. */
  async resumeHttpStream(): Promise<ReadableStream<Uint8Array> | null> {
    const requestId = this._resumableStream.activeRequestId;
    if (!this._resumableStream.hasActiveStream() || !requestId) return null;
    const { stream, connection } = this.#taps.open(requestId);
    this._resumableStream.replayChunks(connection, requestId);
    return stream;
  }

  /**
   * Stops a turn (by default the one streaming) as a WebSocket cancel does: the reply so far is kept,
   * marked stopped (see onChatResponse). False when there is none.
   */
  async cancelTurn(requestId = this._resumableStream.activeRequestId ?? undefined): Promise<boolean> {
    if (!requestId) return false;
    this.#cancelled.add(requestId);
    await this.#chatProtocol(this.#standIn("cancel"), JSON.stringify({ type: CHAT_MESSAGE_TYPES.CHAT_REQUEST_CANCEL, id: requestId }));
    return true;
  }

  /**
   * A reply that was stopped or failed says so in its metadata (`outcome`, and the error), so every
   * client, and the thread read later, shows it where it happened. The SDK's record of the last failed
   * turn, which it would replay to every client that connects from now on, is dropped.
   */
  override async onChatResponse(result: ChatResponseResult) {
    this.#cancelled.delete(result.requestId);
    if (result.status === "completed") return this.#titles.afterTurn(this.messages);
    const outcome: Partial<AssistantMetadata> = result.status === "aborted" ? { outcome: "stopped" } : { outcome: "error", error: result.error ?? "The reply failed." };
    const i = this.messages.findIndex((m) => m.id === result.message.id);
    if (i >= 0) await this.persistMessages(this.messages.with(i, { ...this.messages[i]!, metadata: { ...(this.messages[i]!.metadata as object), ...outcome } }));
    if (result.status === "error") await clearChatTerminal(this.ctx.storage);
  }

  override broadcast(msg: string | ArrayBuffer | ArrayBufferView, without?: string[]) {
    super.broadcast(msg, without);
    if (typeof msg === "string") this.#taps.deliver(msg);
  }

  /** The user message of a turn and the assistant reply that followed it (the last reply, for a regenerate). */
  async turnMessages(userMessageId?: string): Promise<UIMessage[]> {
    const i = userMessageId ? this.messages.findIndex((m) => m.id === userMessageId) : this.messages.findLastIndex((m) => m.role === "user");
    if (i < 0) return [];
    const reply = this.messages[i + 1];
    return reply?.role === "assistant" ? [this.messages[i]!, reply] : [this.messages[i]!];
  }

  override async persistMessages(messages: UIMessage[], excludeBroadcastIds?: string[], options?: { _deleteStaleRows?: boolean }) {
    // Model and tool output can carry text Postgres refuses; made storable before it is kept anywhere.
    await super.persistMessages(messages.map((m) => toStorable(m)), excludeBroadcastIds, options);
  }

  /** The thread's owner: kept in this object's storage (the Worker's gate names it on first contact), else from Postgres once. */
  async ownerId(): Promise<string> {
    this.#ownerId ??= await this.ctx.storage.get<string>("tl_owner");
    if (this.#ownerId) return this.#ownerId;
    const thread = await withDb(this.env, (db) => getThread(db, this.name));
    if (!thread) throw new AppError("thread_not_found", "thread not found");
    return this.#knownOwner(thread.userId);
  }

  async #knownOwner(claimed: string): Promise<string> {
    this.#ownerId ??= await this.ctx.storage.get<string>("tl_owner");
    if (!this.#ownerId) await this.ctx.storage.put("tl_owner", (this.#ownerId = claimed));
    return this.#ownerId;
  }

  /** A decision or a client tool's result, checked against what this thread's server issued; throws the refusal. */
  async #check(i: { decision: { toolCallId?: string; approvalId?: string; approved: boolean; by?: string; reason?: string } } | { result: ToolResultFrame }) {
    if ("result" in i) return checkToolResult(this.messages, i.result);
    // Only the thread's owner decides (not the admin, nor anyone the Worker did not name).
    if (!i.decision.by || i.decision.by !== (await this.ownerId())) throw new AppError("forbidden", "only the thread's owner decides on its tool calls");
    try {
      await checkDecision(this.approvals, this.messages, { ...i.decision, by: i.decision.by });
    } catch (err) {
      // Too late: the call is denied now, as its expiry would have.
      if (err instanceof AppError && err.code === "approval_expired") await this.#deny(i.decision);
      throw err;
    }
    return undefined;
  }

  async #issueApproval(a: { approvalId: string; toolCallId: string; toolName: string; input: unknown }, turnId: string, ttlSeconds: number) {
    await this.approvals.issue({ ...a, turnId, ttlSeconds });
    // `expireApproval` is the name the scheduler stores: it must keep it.
    await this.schedule(ttlSeconds, "expireApproval", { approvalId: a.approvalId });
  }

  /** The scheduler's callback when an approval's time is up: still undecided, the tool call is denied (the model is not run for it). */
  async expireApproval(payload: { approvalId: string }) {
    if (this.approvals.expire(payload.approvalId)) await this.#deny(payload);
  }

  async #deny(by: { approvalId?: string; toolCallId?: string }) {
    const a = this.approvals.get(by.approvalId ? { approvalId: by.approvalId } : { toolCallId: by.toolCallId! });
    if (a) await this.#chatProtocol(this.#standIn("expire"), JSON.stringify({ type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL, toolCallId: a.toolCallId, approved: false, autoContinue: false }));
  }

  /**
   * Decisions and client tool results from HTTP (the plain approvals route, or useChat's transport
   * on /api/v1/chat): checked as over WebSocket, applied through the protocol, and the turn they
   * continue streamed back (null when nothing continues).
   */
  async interact(input: { decisions?: { approvalId: string; approved: boolean; reason?: string }[]; results?: ToolResultFrame[]; by: string; echoes?: "skip" }): Promise<{ ok: true; stream: ReadableStream<Uint8Array> | null } | { ok: false; error: ReturnType<AppError["toRefusal"]> }> {
    // useChat sends the whole transcript: what is already settled on the server is history, not a new answer.
    if (input.echoes === "skip") {
      input.decisions = input.decisions?.filter((d) => this.approvals.get({ approvalId: d.approvalId })?.status === "pending");
      input.results = input.results?.filter((r) => toolCall(this.messages, r.toolCallId)?.part.state === "input-available");
      if (!input.decisions?.length && !input.results?.length) return { ok: false, error: new AppError("validation_failed", "nothing in this request answers a tool call that is waiting").toRefusal() };
    }
    try {
      for (const d of input.decisions ?? []) await this.#check({ decision: { ...d, by: input.by } });
      for (const r of input.results ?? []) await this.#check({ result: r });
    } catch (err) {
      return { ok: false, error: toAppError(err).toRefusal() };
    }
    let opened: ((stream: ReadableStream<Uint8Array>) => void) | undefined;
    const continued = new Promise<ReadableStream<Uint8Array>>((r) => (opened = r));
    this.#continuationWaiter = (requestId) => {
      this.#continuationWaiter = undefined;
      opened!(this.#taps.open(requestId).stream);
    };
    const standIn = this.#standIn("interact");
    const frames = [
      ...(input.decisions ?? []).map((d) => ({ type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL, toolCallId: this.approvals.get({ approvalId: d.approvalId })!.toolCallId, approved: d.approved, autoContinue: true })),
      ...(input.results ?? []).map((r) => ({ ...r, type: CHAT_MESSAGE_TYPES.TOOL_RESULT, autoContinue: true })),
    ];
    const applied = (async () => {
      for (const f of frames) await this.#chatProtocol(standIn, JSON.stringify(f));
    })();
    // The continuation starts once every call of the step has its answer; if none does, there is nothing to stream.
    const stream = await Promise.race([continued, applied.then(() => new Promise<null>((r) => setTimeout(() => r(null), 2000)))]);
    if (!stream) this.#continuationWaiter = undefined;
    return { ok: true, stream };
  }

  /** The thread's approvals (pending ones by default), for the owner's HTTP listing. */
  listApprovals(status?: "pending" | "approved" | "denied" | "expired") {
    return this.approvals.list(status);
  }

  #standIn(what: string) {
    const id = `http:${what}:${crypto.randomUUID()}`;
    return { id, tags: [], uri: null, send: (m: string) => this.#taps.deliver(m), close() {}, state: null, setState() {} } as unknown as Connection;
  }

  /** What this thread has not yet written to Postgres, what Postgres refused, and whether a reply is streaming. */
  async status() {
    const { backlog, oldestAt, quarantined, attempt, nextRetryAt } = this.outbox.state;
    return { outbox: { backlog, oldestAt, quarantined, retryAttempt: attempt, nextRetryAt }, streaming: this._resumableStream.hasActiveStream() };
  }

  /** Drains the outbox now, within `timeoutMs`: a read of Postgres after it sees every change made here (read-your-writes). */
  async sync(timeoutMs = 3000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.outbox.flush().catch(() => {}), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]).finally(() => clearTimeout(timer));
  }

  quarantined() {
    return this.outbox.quarantined();
  }

  /** The admin's call on a quarantined change: try it again (`retry`) or give it up (`drop`). */
  async resolveQuarantined(seq: number, action: "retry" | "drop"): Promise<boolean> {
    const done = action === "retry" ? this.outbox.requeue(seq) : this.outbox.drop(seq);
    log("info", "outbox_quarantine_resolved", { threadId: this.name, seq, action, found: done });
    if (done) await this.#sync.flush();
    return done;
  }

  /** Clears the transcript, for the owner's HTTP call: through the protocol's own clear, so every client and Postgres follow. */
  async clearHistory(): Promise<void> {
    await this.#chatProtocol(this.#standIn("clear"), JSON.stringify({ type: CHAT_MESSAGE_TYPES.CHAT_CLEAR }));
    log("info", "thread_cleared", { threadId: this.name, userId: this.#ownerId });
  }

  /** For the user's authority: a rotated key or a deleted user (see ./connections). */
  async revoke(userId: string, keyHashes: string[] | "all", reason: string): Promise<number> {
    return this.#sockets.revoke(userId, keyHashes, reason);
  }

  /** Deletes this thread's storage (messages, streams, outbox): its thread is gone from Postgres. */
  async wipe() {
    this.outbox.discard();
    await this.#sync.report();
    // Its messages left the owner's search index with the thread (a cascade): cached searches must not keep them.
    await this.#index.invalidate();
    await Promise.all([this.#index.settled(), this.#titles.settled()]);
    await this.#closeSockets(4404, "this thread was deleted");
    await this.destroy();
  }

  /**
   * Closes every socket, with a code clients do not retry, and waits for their close handshakes (a
   * second at most): a socket still open when destroy() resets the object logs "Uncaught Error: destroyed".
   */
  async #closeSockets(code: number, reason: string) {
    const open = [...this.getConnections()];
    if (!open.length) return;
    let left = open.length;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = new Promise<void>((resolve) => {
      this.#onSocketClosed = () => void (--left <= 0 && resolve());
      timer = setTimeout(resolve, 1000);
    });
    for (const c of open) c.close(code, reason);
    await closed.finally(() => clearTimeout(timer));
  }

  /** The scheduler's callback for a failed drain's next try (see OutboxSync). */
  async retryOutbox() {
    await this.#sync.retry();
  }

  /** The scheduler's callback for a failed indexing run's next try (see MessageIndexer). */
  async retryIndex() {
    await this.#index.retry();
  }

  /** Waits for the indexing run in progress, if any (tests). */
  async indexed(): Promise<void> {
    await this.#index.settled();
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
    connection.send(JSON.stringify({ type: CHAT_MESSAGE_TYPES.CHAT_MESSAGES, messages: this.messages, connect: true }));
  }

  #trace(requestId: string, turnId: string, transport: "ws" | "http", trigger: string) {
    return new TurnTrace(this.env, { requestId, turnId, threadId: this.name, transport, trigger });
  }
}

/** The ids of the user messages a request carried (what a client settles a refused send by). */
const sentIds = (body: ChatRequestBody) => (body.trigger === "submit-message" ? [body.messages.at(-1)!.id] : undefined);
