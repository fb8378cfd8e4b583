import { log } from "./log.ts";
import { metrics } from "./metrics.ts";

export type TurnIds = { requestId: string; turnId: string; threadId: string; transport: "ws" | "http"; trigger: string };
type ToolCall = { name: string; outcome: string; ms: number; cached?: boolean };
type Ending = { code?: string; inputTokens?: number; outputTokens?: number };

/**
 * One turn, from its frame's arrival to its end: gathers what the turn log line and the turn
 * metric report. Ends once, whichever of finish, abort, error or refusal comes first.
 */
export class TurnTrace {
  readonly #started = Date.now();
  #firstChunkMs: number | null = null;
  #tools: ToolCall[] = [];
  #approvals: { tool: string; event: string }[] = [];
  #ended = false;
  userId: string | null = null;
  model: string | null = null;
  offline = false;
  /** How the turn was admitted: by a call to the owner's authority, or on the thread's lease. */
  admission: "authority" | "lease" | undefined;
  /** The user's text, set only when the `log_message_content` flag is on for the turn. */
  content: string | undefined;

  private readonly env: Env;
  readonly ids: TurnIds;
  constructor(env: Env, ids: TurnIds) {
    this.env = env;
    this.ids = ids;
  }

  chunk() {
    this.#firstChunkMs ??= Date.now() - this.#started;
  }

  /** A tool execution's outcome: our tools report failures as `status` in their output; a throw is "error". */
  tool(name: string, result: { type: "tool-result"; output: unknown } | { type: "tool-error" }, ms: number) {
    const output = result.type === "tool-result" && typeof result.output === "object" && result.output ? (result.output as Record<string, unknown>) : {};
    const outcome = result.type === "tool-error" ? "error" : typeof output.status === "string" ? output.status : "ok";
    this.#tools.push({ name, outcome, ms: Math.round(ms), ...(typeof output.cached === "boolean" && { cached: output.cached }) });
  }

  /** A tool call held for the owner's approval, or decided. */
  approval(tool: string, event: "requested" | "approved" | "denied" | "expired") {
    this.#approvals.push({ tool, event });
  }

  end(status: "ok" | "error" | "aborted" | "refused", ending: Ending = {}) {
    if (this.#ended) return;
    this.#ended = true;
    const durationMs = Date.now() - this.#started;
    const searches = this.#tools.filter((t) => t.name === "hybrid_search");
    const toolErrors = this.#tools.filter((t) => t.outcome !== "ok").length;
    const cacheHits = searches.filter((t) => t.cached).length;
    log(status === "error" ? "error" : "info", "turn", {
      ...this.ids,
      userId: this.userId,
      frame: "cf_agent_use_chat_request",
      status,
      code: ending.code,
      durationMs,
      firstChunkMs: this.#firstChunkMs,
      model: this.model,
      offline: this.offline,
      admission: this.admission,
      inputTokens: ending.inputTokens,
      outputTokens: ending.outputTokens,
      tools: this.#tools,
      ...(this.#approvals.length && { approvals: this.#approvals }),
      cacheHit: searches.length ? cacheHits === searches.length : undefined,
      content: this.content,
    });
    metrics(this.env).write({
      kind: "turn",
      threadId: this.ids.threadId,
      userId: this.userId,
      transport: this.ids.transport,
      status,
      model: this.model,
      durationMs,
      firstChunkMs: this.#firstChunkMs,
      inputTokens: ending.inputTokens ?? 0,
      outputTokens: ending.outputTokens ?? 0,
      toolCalls: this.#tools.length,
      toolErrors,
      searchMs: searches.reduce((sum, t) => sum + t.ms, 0),
      searchCalls: searches.length,
      searchCacheHits: cacheHits,
    });
  }
}
