import { z } from "zod";
import { EMBEDDING_DIMENSIONS } from "./db/schema.ts";
import { parseAllowedOrigins } from "./mcp/url-policy.ts";

// Unset, empty and whitespace-only values all mean "not configured" (wrangler vars and .dev.vars produce "").
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), schema.optional());

/** Comma-separated origins (scheme://host[:port]); none when unset. */
const originList = () =>
  optional(
    z.string().transform((v, ctx) => {
      const origins = parseAllowedOrigins(v);
      if (typeof origins !== "string") return origins;
      ctx.addIssue(origins);
      return z.NEVER;
    }),
  ).transform((v) => v ?? []);

const parseJson = (s: string, ctx: z.RefinementCtx): unknown => {
  try {
    return JSON.parse(s);
  } catch {
    ctx.addIssue({ code: "custom", message: "must be JSON" });
    return z.NEVER;
  }
};

const configSchema = z.object({
  OPENAI_API_KEY: optional(z.string()),
  OPENAI_BASE_URL: optional(z.url({ protocol: /^https?$/ })),
  OPENAI_API: optional(z.enum(["responses", "chat"])).transform((v) => v ?? "responses"),
  CHAT_MODEL: optional(z.string()).transform((v) => v ?? "gpt-4o-mini"),
  OFFLINE_CHUNK_DELAY_MS: optional(z.coerce.number().int().min(0).max(1000)).transform((v) => v ?? 15),
  ENVIRONMENT: optional(z.enum(["development", "production"])).transform((v) => v ?? "production"),
  ADMIN_TOKEN: optional(z.string().min(16, "ADMIN_TOKEN must be at least 16 characters")),
  TURN_RATE_LIMIT: optional(z.coerce.number().int().min(1).max(10_000)).transform((v) => v ?? 20),
  TURN_RATE_WINDOW_SECONDS: optional(z.coerce.number().int().min(1).max(86_400)).transform((v) => v ?? 60),
  EMBEDDING_MODEL: optional(z.string()).transform((v) => v ?? "text-embedding-3-small"),
  // chunks.embedding is vector(512): another width needs a migration, so any other value is refused here.
  EMBEDDING_DIMENSIONS: optional(
    z.coerce
      .number()
      .int()
      .refine((n) => n === EMBEDDING_DIMENSIONS, `must be ${EMBEDDING_DIMENSIONS} (chunks.embedding)`),
  ).transform((v) => v ?? EMBEDDING_DIMENSIONS),
  SEARCH_CANDIDATES: optional(z.coerce.number().int().min(10).max(1000)).transform((v) => v ?? 100),
  SEARCH_CACHE_TTL_SECONDS: optional(z.coerce.number().int().min(60).max(86_400)).transform((v) => v ?? 300),
  SEARCH_RATE_LIMIT: optional(z.coerce.number().int().min(1).max(10_000)).transform((v) => v ?? 30),
  SEARCH_RATE_WINDOW_SECONDS: optional(z.coerce.number().int().min(1).max(86_400)).transform((v) => v ?? 60),
  SEARCH_TIMEOUT_MS: optional(z.coerce.number().int().min(100).max(60_000)).transform((v) => v ?? 5000),
  SEARCH_RETRIES: optional(z.coerce.number().int().min(0).max(10)).transform((v) => v ?? 3),
  // The longest reply one model call may write; a turn reserves its context plus this against the user's budgets.
  TURN_MAX_OUTPUT_TOKENS: optional(z.coerce.number().int().min(16).max(200_000)).transform((v) => v ?? 4096),
  // Context budgets (tokens of a model's context window): a JSON object of model id (or id prefix) to tokens, over
  // the defaults in src/agent/context-budget.ts; models named nowhere get CONTEXT_BUDGET_TOKENS. Flag context_budget_tokens.
  CONTEXT_BUDGETS: optional(
    z
      .string()
      .transform(parseJson)
      .pipe(z.record(z.string().min(1), z.number().int().min(1024).max(10_000_000))),
  ).transform((v) => v ?? {}),
  CONTEXT_BUDGET_TOKENS: optional(z.coerce.number().int().min(1024).max(10_000_000)).transform((v) => v ?? 32_768),
  // The model that writes summaries of long threads and thread titles (a cheaper one than CHAT_MODEL, say); default the turn's own.
  SUMMARY_MODEL: optional(z.string().trim().min(1).max(200)),
  // How long a tool call held for the owner's approval waits before it is denied.
  APPROVAL_TTL_SECONDS: optional(
    z.coerce
      .number()
      .int()
      .min(1)
      .max(7 * 86_400),
  ).transform((v) => v ?? 3600),
  // Open WebSockets: on one thread (any callers), and of one user across their threads.
  MAX_SOCKETS_PER_THREAD: optional(z.coerce.number().int().min(1).max(10_000)).transform((v) => v ?? 32),
  MAX_SOCKETS_PER_USER: optional(z.coerce.number().int().min(1).max(100_000)).transform((v) => v ?? 100),
  // How long an isolate reuses resolved feature flags: the most a flag change waits to take effect (0: read every time).
  FLAG_CACHE_SECONDS: optional(z.coerce.number().int().min(0).max(300)).transform((v) => v ?? 30),
  // The transport without a HYPERDRIVE binding: this Postgres over Neon's serverless driver (WebSocket).
  DATABASE_URL: optional(z.url({ protocol: /^postgres(ql)?$/ })),
  // Local and test use only: host:port of a plain WebSocket-to-TCP proxy in front of a plain Postgres (no TLS).
  NEON_WS_PROXY: optional(z.string().regex(/^[\w.-]+:\d+$/, "must be host:port")),
  // Where metrics go: Analytics Engine (the METRICS binding) or this isolate's memory; development defaults to local.
  METRICS_SINK: optional(z.enum(["analytics-engine", "local"])),
  // Per user, kept by their authority (the admin is exempt): GET /api/v1/search calls and POST /api/v1/documents requests per window.
  SEARCH_API_RATE_LIMIT: optional(z.coerce.number().int().min(1).max(10_000)).transform((v) => v ?? 60),
  SEARCH_API_RATE_WINDOW_SECONDS: optional(z.coerce.number().int().min(1).max(86_400)).transform((v) => v ?? 60),
  INGEST_RATE_LIMIT: optional(z.coerce.number().int().min(1).max(10_000)).transform((v) => v ?? 20),
  INGEST_RATE_WINDOW_SECONDS: optional(z.coerce.number().int().min(1).max(86_400)).transform((v) => v ?? 60),
  // What one user may own (the admin's global documents are exempt); counted in the ingesting transaction.
  MAX_DOCUMENTS_PER_USER: optional(z.coerce.number().int().min(1).max(10_000_000)).transform((v) => v ?? 1000),
  MAX_CHUNKS_PER_USER: optional(z.coerce.number().int().min(1).max(100_000_000)).transform((v) => v ?? 10_000),
  // POST /api/v1/chat (useChat): a chat id that is not a thread yet becomes the caller's new thread (a request may also ask, with createThread).
  CHAT_CREATE_THREADS: optional(z.enum(["true", "false"])).transform((v) => v === "true"),
  // Browser origins (scheme://host[:port], comma-separated) that may call the API cross-origin; none by default.
  CORS_ORIGINS: originList(),
  // MCP servers users register: their bearer tokens are sealed with a key from this secret (development has a default).
  MCP_SECRET_KEY: optional(z.string().min(32, "MCP_SECRET_KEY must be at least 32 characters")),
  // Origins exempt from the MCP URL policy (http and local hosts allowed): local servers and tests only.
  MCP_ALLOWED_ORIGINS: originList(),
  // The longest an MCP server may take to connect and list its tools, or to answer one tool call; transient failures are retried MCP_RETRIES times.
  MCP_TIMEOUT_MS: optional(z.coerce.number().int().min(100).max(120_000)).transform((v) => v ?? 10_000),
  MCP_RETRIES: optional(z.coerce.number().int().min(0).max(5)).transform((v) => v ?? 2),
  // MCP tool calls one thread may make per window (flag mcp_rate_limit).
  MCP_RATE_LIMIT: optional(z.coerce.number().int().min(1).max(10_000)).transform((v) => v ?? 30),
  MCP_RATE_WINDOW_SECONDS: optional(z.coerce.number().int().min(1).max(86_400)).transform((v) => v ?? 60),
});

export type Config = z.infer<typeof configSchema> & {
  offline: boolean;
  adminToken: string | undefined;
  metricsSink: "analytics-engine" | "local";
  mcpSecretKey: string | undefined;
};

/** The admin token local development uses when ADMIN_TOKEN is unset; nowhere else has a default. */
export const DEV_ADMIN_TOKEN = "dev-admin-token";
/** Likewise the MCP token key under ENVIRONMENT=development: tokens sealed with it are only as secret as this file. */
export const DEV_MCP_SECRET_KEY = "threadline-development-only-mcp-secret-key";

const cache = new WeakMap<object, Config>();

/** Parses the Worker's env once per env object; a bad value fails loudly at the first request that needs it. */
export function getConfig(env: Env): Config {
  let config = cache.get(env);
  if (!config) {
    const parsed = configSchema.safeParse(env);
    if (!parsed.success) throw new Error(`invalid configuration: ${z.prettifyError(parsed.error)}`);
    // A base URL without a key is a keyless OpenAI-compatible server (Ollama, vLLM); only neither means offline.
    const { ADMIN_TOKEN, ENVIRONMENT } = parsed.data;
    config = {
      ...parsed.data,
      offline: !parsed.data.OPENAI_API_KEY && !parsed.data.OPENAI_BASE_URL,
      adminToken: ADMIN_TOKEN ?? (ENVIRONMENT === "development" ? DEV_ADMIN_TOKEN : undefined),
      metricsSink: parsed.data.METRICS_SINK ?? (ENVIRONMENT === "development" ? "local" : "analytics-engine"),
      mcpSecretKey: parsed.data.MCP_SECRET_KEY ?? (ENVIRONMENT === "development" ? DEV_MCP_SECRET_KEY : undefined),
    };
    cache.set(env, config);
  }
  return config;
}
