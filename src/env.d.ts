import type { ThreadAgent } from "./agent/thread-agent";

declare global {
  namespace Cloudflare {
    interface Env {
      ThreadAgent: DurableObjectNamespace<ThreadAgent>;
      CACHE: KVNamespace;
      HYPERDRIVE: Hyperdrive;
      OPENAI_API_KEY?: string;
      OPENAI_BASE_URL?: string;
      OPENAI_API?: string;
      CHAT_MODEL?: string;
      OFFLINE_CHUNK_DELAY_MS?: string;
    }
  }
  type Env = Cloudflare.Env;
}
export {};
