import { env as workerEnv } from "cloudflare:workers";

/** The test projects' bindings (vitest.config.ts): the Worker's own, set, and the fake services' addresses. */
export type TestEnv = Env & {
  ADMIN_TOKEN: string;
  OPENAI_API: string;
  FLAG_CACHE_SECONDS: string;
  MAX_SOCKETS_PER_THREAD: string;
  MAX_SOCKETS_PER_USER: string;
  /** The faults project's TCP proxy in front of Postgres: POST /down, /hang, /up. */
  FAULT_CONTROL_URL: string;
  OPENAI_FAKE_URL: string;
};

export const env = workerEnv as TestEnv;
