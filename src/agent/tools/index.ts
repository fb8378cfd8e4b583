import type { ToolSet } from "ai";
import type { ToolContext } from "./context";
import { currentTime } from "./current-time";
import { hybridSearch } from "./hybrid-search";

export type { ToolContext };

/** The tools a thread agent offers its model: hybrid_search unless its flag is off. */
export function agentTools(ctx: ToolContext): ToolSet {
  return { current_time: currentTime, ...(ctx.flags?.hybrid_search !== false && { hybrid_search: hybridSearch(ctx) }) };
}
