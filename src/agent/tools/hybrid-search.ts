import { tool, zodSchema } from "ai";
import { z } from "zod";
import { toAppError } from "../../errors.ts";
import type { SearchToolOutput } from "../../messages.ts";
import { log } from "../../observability/log.ts";
import { takeSlot } from "../../authority/sliding-window.ts";
import { search, type SearchDeps } from "../../search/search.ts";
import { searchDeps } from "../../search/deps.ts";
import type { ToolContext } from "./context.ts";

export const MAX_TOOL_RESULTS = 20;

const RATE_KEY = "hybrid_search:calls";

// Wrapped once, at load (./index.ts says why).
const input = zodSchema(
  z.strictObject({
    query: z.string().trim().min(1).max(500).describe("What to look for, in natural language or keywords"),
    limit: z.number().int().min(1).max(MAX_TOOL_RESULTS).default(5).describe(`How many passages to return (at most ${MAX_TOOL_RESULTS})`),
  }),
);

/**
 * Searches the documents the thread's owner can see. Every failure is a result the model can read
 * and explain (`rate_limited`, `search_unavailable`), never an exception that would end the turn.
 * It runs in the thread's Durable Object, where work left running goes on after the tool answers:
 * the cache write is not waited for.
 */
export function hybridSearch(ctx: ToolContext, deps: SearchDeps = { ...searchDeps(ctx.env, ctx.versions), background: () => {} }) {
  const { config } = deps;
  const callsAllowed = ctx.flags?.search_rate_limit ?? config.SEARCH_RATE_LIMIT;
  return tool({
    description: "Search the user's documents and the shared knowledge base (keyword and semantic search combined). Returns the best-matching passages with their document titles.",
    inputSchema: input,
    execute: async ({ query, limit }): Promise<SearchToolOutput> => {
      const slot = await takeSlot(ctx.storage, RATE_KEY, callsAllowed, config.SEARCH_RATE_WINDOW_SECONDS);
      if (!slot.ok)
        return {
          status: "rate_limited" as const,
          retryAfterSeconds: slot.retryAfterSeconds,
          message: `Search is rate limited on this thread (${callsAllowed} per ${config.SEARCH_RATE_WINDOW_SECONDS} s); try again in ${slot.retryAfterSeconds} s.`,
        };
      try {
        const res = await search(deps, { query, limit, mode: "hybrid", scope: { ownerId: await ctx.ownerId() } });
        return { status: "ok" as const, results: res.results, cached: res.cached };
      } catch (err) {
        const error = toAppError(err);
        log("warn", "search_failed", { threadId: ctx.threadId, code: error.code });
        return { status: "search_unavailable" as const, message: "Search is unavailable right now (the database could not be reached); answer without it and say so." };
      }
    },
  });
}
