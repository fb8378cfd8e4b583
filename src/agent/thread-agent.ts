import { AIChatAgent, type ChatResponseResult, type OnChatMessageOptions } from "@cloudflare/ai-chat";
import type { Connection, WSMessage } from "agents";
import { CHAT_MESSAGE_TYPES } from "agents/chat";
import type { UIMessage } from "ai";
import { forwardedPrincipal } from "../auth/access.ts";
import { withDb } from "../db/client.ts";
import { getThread } from "../db/threads.ts";
import { AppError, toAppError } from "../errors.ts";
import { threadSettings } from "../flags/index.ts";
import { ThreadMcpServers } from "../mcp/client.ts";
import { log } from "../observability/log.ts";
import { TurnTrace } from "../observability/turn-trace.ts";
import { searchDeps } from "../search/deps.ts";
import { toStorable } from "../validation/storable.ts";
import { Approvals } from "./approvals.ts";
import { ChatTurns } from "./chat-turn.ts";
import { connectionTags, keyOf, Sockets, userOf } from "./connections.ts";
import { turnMessages } from "./context.ts";
import { ContextWindow } from "./context-window.ts";
import { chatErrorFrame, errorFrame, readFrame, sentIds } from "./frame-policy.ts";
import { TurnGate } from "./gate.ts";
import { FrameTaps, type ChatProtocol } from "./http-stream.ts";
import { HttpTurns } from "./http-turns.ts";
import { Decisions } from "./interactions.ts";
import { MessageIndexer } from "./message-index.ts";
import { Outbox } from "./outbox.ts";
import { OutboxSync } from "./outbox-sync.ts";
import { Owner } from "./owner.ts";
import { rehydrate } from "./rehydrate.ts";
import { catchUp, resumeStream } from "./resume.ts";
import { upgradeStorage } from "./storage-schema.ts";
import { Titles } from "./titles.ts";
import { SYSTEM_PROMPT } from "./turn.ts";

/**
 * One Durable Object per chat thread (its name is the thread id). AIChatAgent keeps the thread's
 * hot transcript and streams; every durable write of it also lands in an outbox that drains to
 * Postgres, the system of record, in the background. This class wires the parts: the frame
 * allow-list (./frame-policy), the gate (./gate), the protocol's turns (./chat-turn; the model call,
 * ./turn), HTTP turns (./http-turns, ./http-stream), held tool calls (./interactions), the sockets
 * (./connections), returning clients (./resume), the owner (./owner) and the outbox (./outbox-sync).
 */
export class ThreadAgent extends AIChatAgent<Env> {
  // The parts, made with the object: none reads storage before the constructor below has upgraded it.
  readonly #thread = {
    env: this.env,
    threadId: () => this.name,
    ownerId: () => this.#owner.id(),
    messages: () => this.messages,
    storage: this.ctx.storage,
    waitUntil: (p: Promise<unknown>) => this.ctx.waitUntil(p),
  };
  /**
   * Three `onMessage`s: the class method (Agent's) takes the frames no protocol layer claimed;
   * AIChatAgent's constructor puts its chat protocol handler over it (kept here as #chatProtocol);
   * this constructor puts the frame allow-list over that, so every frame is checked first.
   */
  readonly #chatProtocol = this.onMessage.bind(this) as ChatProtocol;
  readonly #owner = new Owner({ storage: this.ctx.storage, recorded: () => withDb(this.env, (db) => getThread(db, this.name)).then((t) => t?.userId) });
  readonly #taps = new FrameTaps();
  readonly #send = this.#taps.sender(this.#chatProtocol);
  // Each batch goes to Postgres, its messages queued for search (./message-index.ts); what Postgres then says of the thread's title goes to ./titles.
  readonly outbox: Outbox = new Outbox(
    this.ctx.storage.sql,
    (ops) => this.#index.write(ops).then((applied) => this.#titles.observed(applied)),
    () => this.name,
  );
  // `retryOutbox`, `retryIndex` and `expireApproval` are names the scheduler stores: they must keep them.
  readonly #sync = new OutboxSync(this.outbox, { ...this.#thread, schedule: (s) => this.schedule(s, "retryOutbox").then(() => {}) });
  readonly approvals = new Approvals(this.ctx.storage.sql, () => this.name);
  readonly #window = new ContextWindow({ ...this.#thread, sql: this.ctx.storage.sql });
  readonly #index = new MessageIndexer({
    ...this.#thread,
    deps: () => searchDeps(this.env),
    window: this.#window,
    schedule: (s) => this.schedule(s, "retryIndex").then(() => {}),
    quietMs: (): number => this.#sync.quietMs(),
  });
  readonly #decisions = new Decisions({ ...this.#thread, approvals: this.approvals, send: this.#send, schedule: (s, payload) => this.schedule(s, "expireApproval", payload) });
  readonly #titles = new Titles({ ...this.#thread, broadcast: (frame) => this.broadcast(frame) });
  readonly #mcpServers = new ThreadMcpServers({ ...this.#thread, mcp: this.mcp });
  readonly #gate = new TurnGate({ ...this.#thread, systemChars: SYSTEM_PROMPT.length, sockets: () => this.#sockets.count });
  readonly #sockets = new Sockets({ ...this.#thread, connections: (tag) => this.getConnections(tag) });
  readonly #http = new HttpTurns({
    ...this.#thread,
    chat: this.#chatProtocol,
    taps: this.#taps,
    gate: this.#gate,
    sync: this.#sync,
    owner: this.#owner,
    decisions: this.#decisions,
  });
  readonly #turns = new ChatTurns({
    ...this.#thread,
    gate: this.#gate,
    window: this.#window,
    mcp: this.#mcpServers,
    decisions: this.#decisions,
    http: this.#http,
    titles: this.#titles,
    abort: (id) => this.abortRequest(id),
    persist: (m) => this.persistMessages(m),
  });
  #warming: Promise<void> | undefined;
  /** Turns do not wait for MCP connections the SDK restores on wake: a tool call waits for its own server (src/mcp/client.ts). */
  override waitForMcpConnections = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Our SQLite tables reach this code's layout before anything reads them.
    upgradeStorage(ctx.storage);
    this.sessions.subscribe((event) => {
      if (this.#sync.record(event) && event.type === "clear") this.#window.clear();
    });
    this.onMessage = (connection: Connection, message: WSMessage) => this.#onFrame(connection, message);
    const onConnect = this.onConnect.bind(this);
    this.onConnect = async (connection, c) => {
      await onConnect(connection, c);
      this.#sockets.opened(c.request);
      this.#warming = this.#turns.warm(keyOf(connection));
    };
    const onClose = this.onClose.bind(this);
    this.onClose = async (connection, code, reason, wasClean) => {
      await onClose(connection, code, reason, wasClean);
      this.#sockets.closed(connection);
    };
  }

  /**
   * Every request reaches a thread agent through the Worker's gate (./route.ts), which names the
   * caller and the thread's owner. A request without that, for a thread of another owner, or to an
   * instance that is a facet is refused before the SDK sees it; so is a socket over the thread's cap.
   */
  override async fetch(request: Request): Promise<Response> {
    const principal = forwardedPrincipal(request);
    if (this.parentPath.length || !principal || (await this.#owner.claim(principal.ownerId)) !== principal.ownerId)
      return new AppError("thread_not_found", "thread not found").toResponse();
    return this.#sockets.overCap(request, principal) ?? super.fetch(request);
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
    if (!(await this.#sync.wake()) || this.messages.length) return;
    // The owner is claimed before the SDK starts the agent: its settings, which the connection's warm-up reads next, come on the same connection.
    const owner = this.#owner.known;
    await rehydrate(this.env, this.name, (m) => this.#sync.unmirrored(() => super.persistMessages(m)), owner ? (db) => threadSettings(this.env, owner, this.name, db) : undefined);
  }

  async #onFrame(connection: Connection, message: WSMessage) {
    if (this.#sockets.isRevoked(connection)) return connection.close(4401, "this connection's key was revoked");
    const read = readFrame(message);
    if (read.kind === "refuse") return connection.send(read.reply);
    if (read.kind === "pass") {
      await this.#chatProtocol(connection, message);
      if (read.type === "stream-resume-request") catchUp(connection, this._resumableStream, this.messages);
      return;
    }
    if (read.kind === "approval" || read.kind === "tool-result") {
      const refused = await this.#decisions
        .check(read.kind === "approval" ? { decision: { ...read.frame, by: userOf(connection) } } : { result: read.frame })
        .catch((e: unknown) => e);
      if (refused) return connection.send(errorFrame(toAppError(refused)));
      return this.#sync.during(() => this.#chatProtocol(connection, message));
    }
    const trace = new TurnTrace(this.env, { requestId: read.frame.id, turnId: read.frame.id, threadId: this.name, transport: "ws", trigger: read.body.trigger });
    // The admission is part of the turn: what waits for the thread to be quiet waits for it too.
    return this.#sync.during(async () => {
      const admitted = await this.#gate.admit(read.frame, read.body, trace, keyOf(connection), true);
      if (admitted instanceof AppError) return connection.send(chatErrorFrame(read.frame.id, admitted, sentIds(read.body)));
      return this.#chatProtocol(connection, admitted);
    });
  }

  /** The SDK's handlers for a turn the protocol runs, as it starts and as it ends (./chat-turn). */
  override async onChatMessage(_onFinish: unknown, options?: OnChatMessageOptions) {
    return this.#turns.run(options);
  }

  override async onChatResponse(result: ChatResponseResult) {
    await this.#turns.ended(result);
  }

  override broadcast(msg: string | ArrayBuffer | ArrayBufferView, without?: string[]) {
    super.broadcast(msg, without);
    if (typeof msg === "string") this.#taps.deliver(msg);
  }

  override async persistMessages(messages: UIMessage[], excludeBroadcastIds?: string[], options?: { _deleteStaleRows?: boolean }) {
    // Model and tool output can carry text Postgres refuses; made storable before it is kept anywhere.
    await super.persistMessages(
      messages.map((m) => toStorable(m)),
      excludeBroadcastIds,
      options,
    );
  }

  // Called over RPC by the Worker (src/api, src/mcp, the user's authority) and the tests.
  /** A turn over HTTP (see ./http-turns): the AI SDK UI message stream (SSE) of its reply, or the refusal. */
  httpTurn(input: Parameters<HttpTurns["turn"]>[0]) {
    return this.#http.turn(input);
  }
  /** The active turn's stream from its first chunk (replayed from storage), then live; null when idle. */
  async resumeHttpStream() {
    return resumeStream(this._resumableStream, this.#taps);
  }
  /** Stops a turn (by default the one streaming) as a WebSocket cancel does: the reply so far is kept, marked stopped (see onChatResponse). */
  cancelTurn(requestId = this._resumableStream.activeRequestId ?? undefined) {
    return this.#http.cancel(requestId);
  }
  async turnMessages(userMessageId?: string) {
    return turnMessages(this.messages, userMessageId);
  }
  /** Decisions and client tool results from HTTP (the approvals route, or useChat's transport on /api/v1/chat). */
  interact(input: Parameters<HttpTurns["interact"]>[0]) {
    return this.#http.interact(input);
  }
  listApprovals(status?: "pending" | "approved" | "denied" | "expired") {
    return this.approvals.list(status);
  }
  async status() {
    return { outbox: this.#sync.state(), streaming: this._resumableStream.hasActiveStream() };
  }
  sync(timeoutMs = 3000) {
    return this.#sync.drain(timeoutMs);
  }
  quarantined() {
    return this.outbox.quarantined();
  }
  resolveQuarantined(seq: number, action: "retry" | "drop") {
    return this.#sync.resolve(seq, action);
  }
  async revoke(userId: string, keyHashes: string[] | "all", reason: string) {
    this.#gate.dropLease();
    return this.#sockets.revoke(userId, keyHashes, reason);
  }
  /** The owner's authority changed the rules a lease was granted under (./gate). */
  dropLease() {
    this.#gate.dropLease();
  }
  ownerId() {
    return this.#owner.id();
  }
  /** Waits for what the last connection read ahead of its first turn (tests). */
  async warmed() {
    await this.#warming;
  }
  /** Indexes the messages waiting for the thread to go quiet, and waits for it (tests). */
  async indexed() {
    await this.#index.flush();
  }
  // The scheduler's callbacks, by the names it stores: an approval's time is up, a failed drain's or indexing run's next try.
  async expireApproval(payload: { approvalId: string }) {
    await this.#decisions.expire(payload.approvalId);
  }
  async retryOutbox() {
    await this.#sync.retry();
  }
  async retryIndex() {
    await this.#index.retry();
  }

  /** Clears the transcript, for the owner's HTTP call: through the protocol's own clear, so every client and Postgres follow. */
  async clearHistory(): Promise<void> {
    await this.#send("clear", { type: CHAT_MESSAGE_TYPES.CHAT_CLEAR });
    log("info", "thread_cleared", { threadId: this.name, userId: this.#owner.known });
  }

  /** Deletes this thread's storage (messages, streams, outbox): its thread is gone from Postgres. */
  async wipe() {
    this.#sync.cancel();
    this.outbox.discard();
    await this.#sync.report();
    this.#index.cancel();
    await Promise.all([this.#index.settled(), this.#titles.settled()]);
    await this.#sockets.closeAll(4404, "this thread was deleted");
    await this.destroy();
  }
}
