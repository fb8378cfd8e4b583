import type { ToolSet } from "ai";
import type { Flags } from "../../flags";
import type { LimiterStorage } from "../../authority/sliding-window";
import { currentTime } from "./current-time";
import { hybridSearch } from "./hybrid-search";

/** What a thread's tools know about the thread they serve; `flags`: the turn's feature flags (configuration when absent). */
export type ToolContext = { env: Env; threadId: string; storage: LimiterStorage; ownerId: () => Promise<string>; flags?: Pick<Flags, "hybrid_search" | "search_rate_limit"> };

/** The tools a thread agent offers its model: hybrid_search unless its flag is off. */
export function agentTools(ctx: ToolContext): ToolSet {
  return { current_time: currentTime, ...(ctx.flags?.hybrid_search !== false && { hybrid_search: hybridSearch(ctx) }) };
}
