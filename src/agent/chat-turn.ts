import type { ChatResponseResult, OnChatMessageOptions } from "@cloudflare/ai-chat";
import { clearChatTerminal, createToolsFromClientSchemas } from "agents/chat";
import type { UIMessage } from "ai";
import { flagsFor, threadSettings } from "../flags/index.ts";
import type { ThreadMcpServers } from "../mcp/client.ts";
import type { AssistantMetadata } from "../messages.ts";
import { TurnTrace } from "../observability/turn-trace.ts";
import { contextFor } from "./context.ts";
import type { ContextWindow } from "./context-window.ts";
import type { TurnGate } from "./gate.ts";
import type { HttpTurns } from "./http-turns.ts";
import type { Decisions } from "./interactions.ts";
import type { Titles } from "./titles.ts";
import { isServerTool } from "./tools/index.ts";
import { runTurn } from "./turn.ts";

type Host = {
  env: Env;
  threadId: () => string;
  ownerId: () => Promise<string>;
  messages: () => readonly UIMessage[];
  storage: DurableObjectStorage;
  gate: TurnGate;
  window: ContextWindow;
  mcp: ThreadMcpServers;
  decisions: Decisions;
  http: Pick<HttpTurns, "cancelled" | "continued">;
  titles: Titles;
  /** The SDK's abort of a request it runs. */
  abort: (requestId: string) => void;
  persist: (messages: UIMessage[]) => Promise<void>;
};

/**
 * The turns the chat protocol runs, from the SDK's `onChatMessage` to its `onChatResponse`: a submit
 * or regenerate the gate admitted, or the SDK continuing a turn after a tool's answer. Each gets its
 * admission's flags and trace (or its own), the model's context within its budget, its tools, then
 * the model call (./turn).
 */
export class ChatTurns {
  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /**
   * A client connected: what its first turn reads of Postgres (the flags and MCP servers: once per
   * FLAG_CACHE_SECONDS, then cached) is read now, in the background, not on that turn's path, and its
   * first turn's admission is leased ahead (./admissions.ts).
   */
  warm(keyHash: string | undefined): Promise<void> {
    const { env } = this.host;
    const threadId = this.host.threadId();
    return this.host
      .ownerId()
      .then((userId) => threadSettings(env, userId, threadId))
      .then(() => this.host.gate.prefetch(keyHash))
      .then(
        () => {},
        () => {},
      );
  }

  async run(options?: OnChatMessageOptions): Promise<Response> {
    const { env, gate, window: contextWindow } = this.host;
    const threadId = this.host.threadId();
    const requestId = options?.requestId ?? crypto.randomUUID();
    if (this.host.http.cancelled(requestId)) this.host.abort(requestId);
    const turn = gate.take(requestId);
    const ownerId = await this.host.ownerId();
    // A turn the gate did not see (the SDK continuing a turn itself) is traced from here.
    const trace = turn?.trace ?? new TurnTrace(env, { requestId, turnId: requestId, threadId, transport: "ws", trigger: "continuation" });
    trace.userId ??= ownerId;
    if (!turn && options?.continuation) this.host.http.continued(requestId);
    const flags = turn?.flags ?? (await flagsFor(env, { userId: ownerId, threadId }));
    // The model's context within its budget: the oldest part summarized when needed, from this object's storage alone.
    const messages = contextFor(this.host.messages(), turn?.userMessageId);
    const window = await contextWindow.prepare({ messages, flags, turnId: requestId });
    return runTurn({
      env,
      threadId,
      ownerId,
      turnId: requestId,
      kind: turn?.kind ?? "continuation",
      ...window,
      compact: () => contextWindow.prepare({ messages, flags, turnId: requestId, force: true }),
      flags,
      trace,
      // Tools the client declared and runs itself: never under the name of one of the server's own.
      clientTools: options?.clientTools ? createToolsFromClientSchemas(options.clientTools.filter((t) => !isServerTool(t.name))) : undefined,
      onApprovalRequest: (a) => this.host.decisions.issue(a, requestId, flags.approval_ttl_seconds),
      mcp: await this.host.mcp.tools(ownerId, flags),
      storage: this.host.storage,
      abortSignal: options?.abortSignal,
      reported: turn?.reported,
      searchVersion: turn?.searchVersion,
      reserved: turn?.reserved,
    });
  }

  /**
   * A reply that was stopped or failed says so in its metadata (`outcome`, and the error), so every
   * client, and the thread read later, shows it where it happened. The SDK's record of the last failed
   * turn, which it would replay to every client that connects from now on, is dropped.
   */
  async ended(result: ChatResponseResult): Promise<void> {
    this.host.http.cancelled(result.requestId);
    const messages = this.host.messages();
    if (result.status === "completed") return this.host.titles.afterTurn(messages);
    const outcome: Partial<AssistantMetadata> = result.status === "aborted" ? { outcome: "stopped" } : { outcome: "error", error: result.error ?? "The reply failed." };
    const i = messages.findIndex((m) => m.id === result.message.id);
    // A reply stopped before its first part is not kept by the SDK: it is kept here, empty, so the thread says it was stopped
    // (one that failed before its first part is not: the turn's error says so, and the thread stays without it).
    const reply = i >= 0 ? messages[i] : result.status === "aborted" ? result.message : undefined;
    const marked = reply && { ...reply, metadata: { ...(reply.metadata as object), ...outcome } };
    if (marked) await this.host.persist(i >= 0 ? messages.with(i, marked) : [...messages, marked]);
    if (result.status === "error") await clearChatTerminal(this.host.storage);
  }
}
