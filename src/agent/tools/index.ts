import type { ToolSet } from "ai";
import type { LimiterStorage } from "../../limits/sliding-window";
import { currentTime } from "./current-time";
import { hybridSearch } from "./hybrid-search";

/** What a thread's tools know about the thread they serve. */
export type ToolContext = { env: Env; threadId: string; storage: LimiterStorage; ownerId: () => Promise<string> };

/** The tools every thread agent offers its model. */
export function agentTools(ctx: ToolContext): ToolSet {
  return { current_time: currentTime, hybrid_search: hybridSearch(ctx) };
}
