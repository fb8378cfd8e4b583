import type { ThreadAgent } from "./agent/thread-agent";

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
      MAX_SOCKETS_PER_THREAD?: string;
      MAX_SOCKETS_PER_USER?: string;
      UserAuthority: DurableObjectNamespace<import("./authority/user-authority").UserAuthority>;
      OutboxMonitor: DurableObjectNamespace<import("./limits/outbox-monitor").OutboxMonitor>;
    }
  }
  type Env = Cloudflare.Env;
}
export {};
