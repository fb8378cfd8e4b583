import type { ToolSet } from "ai";
import type { ToolContext } from "./context";
import { currentTime } from "./current-time";
import { hybridSearch } from "./hybrid-search";

export type { ToolContext };

/**
 * Whether a tool call runs at once or waits for the thread owner's decision: the AI SDK's
 * `toolApproval` statuses ("approved": no approval needed; "user-approval": held for a decision).
 */
export type ApprovalPolicy = "user-approval" | "approved";

/** The tools a thread agent offers its model, and each one's approval policy (absent: none needed). */
export type OfferedTools = { tools: ToolSet; approval: Record<string, ApprovalPolicy> };

/** The server's own tools: hybrid_search unless its flag is off. Tools that act (./acting.ts, MCP) add theirs with a policy. */
export function agentTools(ctx: ToolContext): OfferedTools {
  return { tools: { current_time: currentTime, ...(ctx.flags?.hybrid_search !== false && { hybrid_search: hybridSearch(ctx) }) }, approval: {} };
}
