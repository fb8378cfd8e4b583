import { z } from "zod";
import type { Config } from "../config.ts";

type Definition<T extends z.ZodType> = { schema: T; default: (config: Config) => z.infer<T>; description: string };
const flag = <T extends z.ZodType>(schema: T, fallback: (config: Config) => z.infer<T>, description: string): Definition<T> => ({
  schema,
  default: fallback,
  description,
});

/** Every feature flag: its type, its default (from configuration) and what it changes. */
export const FLAG_DEFINITIONS = {
  hybrid_search: flag(z.boolean(), () => true, "The agent offers its model the hybrid_search tool."),
  chat_model: flag(
    z
      .string()
      .trim()
      .min(1)
      .max(200)
      .regex(/^[\w.:/@-]+$/, "letters, digits and . : / @ - _ only"),
    (c) => c.CHAT_MODEL,
    "Model id sent to the model server. Has no effect on the offline model.",
  ),
  offline_model_allowed: flag(z.boolean(), () => true, "With no model configured, the offline model answers; when false such turns are refused (503 model_unavailable)."),
  turn_rate_limit: flag(z.number().int().min(1).max(10_000), (c) => c.TURN_RATE_LIMIT, "Turns a user may start per turn_rate_window_seconds."),
  turn_rate_window_seconds: flag(z.number().int().min(1).max(86_400), (c) => c.TURN_RATE_WINDOW_SECONDS, "The window of turn_rate_limit."),
  search_rate_limit: flag(z.number().int().min(1).max(10_000), (c) => c.SEARCH_RATE_LIMIT, "hybrid_search tool calls a thread may make per SEARCH_RATE_WINDOW_SECONDS."),
  log_message_content: flag(z.boolean(), () => false, "Logs may include message text."),
  approval_save_note: flag(z.enum(["always", "never"]), () => "always" as const, "Whether save_note waits for the thread owner's approval."),
  approval_delete_document: flag(z.enum(["always", "never"]), () => "always" as const, "Whether delete_document waits for the thread owner's approval."),
  approval_mcp_tools: flag(z.enum(["always", "never"]), () => "always" as const, "Whether tools of the user's MCP servers wait for the thread owner's approval."),
  mcp_rate_limit: flag(z.number().int().min(1).max(10_000), (c) => c.MCP_RATE_LIMIT, "MCP tool calls a thread may make per MCP_RATE_WINDOW_SECONDS."),
  approval_ttl_seconds: flag(
    z
      .number()
      .int()
      .min(1)
      .max(7 * 86_400),
    (c) => c.APPROVAL_TTL_SECONDS,
    "How long a tool call waits for the owner's decision before it is denied.",
  ),
  turn_max_output_tokens: flag(
    z.number().int().min(16).max(200_000),
    (c) => c.TURN_MAX_OUTPUT_TOKENS,
    "The longest reply one model call may write (maxOutputTokens); also what a turn reserves against the budgets beyond its context.",
  ),
  context_budget_tokens: flag(
    z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .refine((n) => n === 0 || n >= 1024, "0 (the model's own budget) or at least 1024"),
    () => 0,
    "Tokens a turn's context may take (history, summary, system prompt and tools, and the longest reply); 0: the model's budget from configuration (CONTEXT_BUDGETS).",
  ),
  search_api_rate_limit: flag(z.number().int().min(1).max(10_000), (c) => c.SEARCH_API_RATE_LIMIT, "GET /api/v1/search calls a user may make per search_api_rate_window_seconds."),
  search_api_rate_window_seconds: flag(z.number().int().min(1).max(86_400), (c) => c.SEARCH_API_RATE_WINDOW_SECONDS, "The window of search_api_rate_limit."),
  ingest_rate_limit: flag(z.number().int().min(1).max(10_000), (c) => c.INGEST_RATE_LIMIT, "POST /api/v1/documents requests a user may make per ingest_rate_window_seconds."),
  ingest_rate_window_seconds: flag(z.number().int().min(1).max(86_400), (c) => c.INGEST_RATE_WINDOW_SECONDS, "The window of ingest_rate_limit."),
  max_documents_per_user: flag(z.number().int().min(1).max(10_000_000), (c) => c.MAX_DOCUMENTS_PER_USER, "Documents a user may own."),
  max_chunks_per_user: flag(z.number().int().min(1).max(100_000_000), (c) => c.MAX_CHUNKS_PER_USER, "Chunks a user's documents may have in all."),
} as const;

export type FlagName = keyof typeof FLAG_DEFINITIONS;
export type Flags = { [K in FlagName]: z.infer<(typeof FLAG_DEFINITIONS)[K]["schema"]> };
export type FlagSource = "default" | "global" | "user" | "thread";
export type ResolvedFlags = { [K in FlagName]: { value: Flags[K]; source: FlagSource } };

export const FLAG_NAMES = Object.keys(FLAG_DEFINITIONS) as FlagName[];

export const isFlagName = (name: string): name is FlagName => Object.hasOwn(FLAG_DEFINITIONS, name);

export function defaultFlags(config: Config): Flags {
  return Object.fromEntries(FLAG_NAMES.map((name) => [name, FLAG_DEFINITIONS[name].default(config)])) as Flags;
}

/** Checks a value against its flag's schema: the parsed value, or the zod error. */
export function parseFlagValue<K extends FlagName>(name: K, value: unknown) {
  return (FLAG_DEFINITIONS[name].schema as z.ZodType as z.ZodType<Flags[K]>).safeParse(value);
}

/** A stored override: global when neither id is set. */
export type Override = { flag: string; value: unknown; userId: string | null; threadId: string | null };

const rank: Record<FlagSource, number> = { default: 0, global: 1, user: 2, thread: 3 };
const sourceOf = (o: Override): FlagSource => (o.threadId ? "thread" : o.userId ? "user" : "global");

/**
 * Thread over user over global over the default. An override for an unknown flag, or whose value
 * no longer fits the flag's schema, is skipped (and reported), so the next level applies.
 */
export function resolveFlags(config: Config, overrides: Override[], onInvalid: (o: Override, error: z.ZodError) => void = () => {}): ResolvedFlags {
  const resolved = Object.fromEntries(FLAG_NAMES.map((name) => [name, { value: FLAG_DEFINITIONS[name].default(config), source: "default" }])) as Record<
    FlagName,
    { value: unknown; source: FlagSource }
  >;
  for (const o of overrides) {
    if (!isFlagName(o.flag)) continue;
    const source = sourceOf(o);
    if (rank[source] <= rank[resolved[o.flag].source]) continue;
    const parsed = parseFlagValue(o.flag, o.value);
    if (!parsed.success) {
      onInvalid(o, parsed.error);
      continue;
    }
    resolved[o.flag] = { value: parsed.data, source };
  }
  return resolved as ResolvedFlags;
}

export const flagValues = (resolved: ResolvedFlags): Flags => Object.fromEntries(FLAG_NAMES.map((name) => [name, resolved[name].value])) as Flags;
