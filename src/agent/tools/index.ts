import type { ToolSet } from "ai";
import { getConfig } from "../../config.ts";
import type { ToolContext } from "./context.ts";
import { currentTime } from "./current-time.ts";
import { hybridSearch } from "./hybrid-search.ts";
import { noteTools } from "./notes.ts";

export type { ToolContext };

/**
 * Whether a tool call runs at once or waits for the thread owner's decision: the AI SDK's
 * `toolApproval` statuses ("not-applicable": no approval; "user-approval": held for a decision).
 * ("approved" would still emit an approval request, marked automatic.)
 */
export type ApprovalPolicy = "user-approval" | "not-applicable";

/** The tools a thread agent offers its model, and each one's approval policy (absent: none needed). */
export type OfferedTools = { tools: ToolSet; approval: Record<string, ApprovalPolicy> };

const policy = (setting: "always" | "never" | undefined): ApprovalPolicy => (setting === "never" ? "not-applicable" : "user-approval");

/**
 * Each tool's input schema is a zod schema wrapped once at load (`zodSchema`): the AI SDK turns a
 * bare zod schema into JSON Schema again on every model call, and it caches the conversion only
 * inside such a wrapper. Unwrapped, the four tools' conversions were 11.6 ms of a turn's workerd CPU
 * (a CPU profile of bench:turns, 5 threads; 210 ms sampled a turn).
 *
 * The server's own tools: current_time, hybrid_search unless its flag is off, and the tools that
 * change the user's knowledge base (save_note, delete_document), which wait for the owner's
 * approval unless their flag says "never". `mcp`: the tools of the owner's MCP servers
 * (src/mcp/client.ts), which wait for approval unless approval_mcp_tools says "never".
 */
export function agentTools(ctx: ToolContext, mcp: ToolSet = {}): OfferedTools {
  const c = getConfig(ctx.env);
  const notes = noteTools({
    ...ctx,
    flags: { max_documents_per_user: ctx.flags?.max_documents_per_user ?? c.MAX_DOCUMENTS_PER_USER, max_chunks_per_user: ctx.flags?.max_chunks_per_user ?? c.MAX_CHUNKS_PER_USER },
  });
  return {
    tools: { current_time: currentTime, ...(ctx.flags?.hybrid_search !== false && { hybrid_search: hybridSearch(ctx) }), ...notes, ...mcp },
    approval: {
      save_note: policy(ctx.flags?.approval_save_note),
      delete_document: policy(ctx.flags?.approval_delete_document),
      ...Object.fromEntries(Object.keys(mcp).map((name) => [name, policy(ctx.flags?.approval_mcp_tools)])),
    },
  };
}

/** Every tool name the server itself runs: a client may never answer a call to one of these. */
export const isServerTool = (name: string) => name === "current_time" || name === "hybrid_search" || name === "save_note" || name === "delete_document" || name.startsWith("mcp_");
