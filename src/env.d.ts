import type { ThreadAgent } from "./agent/thread-agent.ts";

declare global {
  namespace Cloudflare {
    interface Env {
      ThreadAgent: DurableObjectNamespace<ThreadAgent>;
      CACHE: KVNamespace;
      HYPERDRIVE?: Hyperdrive;
      OPENAI_API_KEY?: string;
      OPENAI_BASE_URL?: string;
      OPENAI_API?: string;
      CHAT_MODEL?: string;
      OFFLINE_CHUNK_DELAY_MS?: string;
      ENVIRONMENT?: string;
      ADMIN_TOKEN?: string;
      TURN_RATE_LIMIT?: string;
      TURN_RATE_WINDOW_SECONDS?: string;
      EMBEDDING_MODEL?: string;
      EMBEDDING_DIMENSIONS?: string;
      SEARCH_CANDIDATES?: string;
      SEARCH_CACHE_TTL_SECONDS?: string;
      SEARCH_RATE_LIMIT?: string;
      SEARCH_RATE_WINDOW_SECONDS?: string;
      SEARCH_TIMEOUT_MS?: string;
      SEARCH_RETRIES?: string;
      FLAG_CACHE_SECONDS?: string;
      DATABASE_URL?: string;
      NEON_WS_PROXY?: string;
      METRICS?: AnalyticsEngineDataset;
      METRICS_SINK?: string;
      TURN_MAX_OUTPUT_TOKENS?: string;
      CONTEXT_BUDGETS?: string;
      CONTEXT_BUDGET_TOKENS?: string;
      SUMMARY_MODEL?: string;
      APPROVAL_TTL_SECONDS?: string;
      MAX_SOCKETS_PER_THREAD?: string;
      MAX_SOCKETS_PER_USER?: string;
      SEARCH_API_RATE_LIMIT?: string;
      SEARCH_API_RATE_WINDOW_SECONDS?: string;
      INGEST_RATE_LIMIT?: string;
      INGEST_RATE_WINDOW_SECONDS?: string;
      MAX_DOCUMENTS_PER_USER?: string;
      MAX_CHUNKS_PER_USER?: string;
      CHAT_CREATE_THREADS?: string;
      CORS_ORIGINS?: string;
      MCP_SECRET_KEY?: string;
      MCP_ALLOWED_ORIGINS?: string;
      MCP_TIMEOUT_MS?: string;
      MCP_RETRIES?: string;
      MCP_RATE_LIMIT?: string;
      MCP_RATE_WINDOW_SECONDS?: string;
      UserAuthority: DurableObjectNamespace<import("./authority/user-authority.ts").UserAuthority>;
      OutboxMonitor: DurableObjectNamespace<import("./observability/outbox-monitor.ts").OutboxMonitor>;
    }
  }
  type Env = Cloudflare.Env;
}
