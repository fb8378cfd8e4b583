import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig, defineProject } from "vitest/config";

type Target = "database" | "fault-proxy";

/** One Workers project per configuration the suite must cover; each gets its own Miniflare. */
const project = (name: string, include: string[], opts: { db?: Target; model?: "responses" | "chat" | "offline"; exclude?: string[] } = {}) =>
  defineProject({
    plugins: [
      cloudflareTest(({ inject }) => {
        const model = opts.model ?? "responses";
        const bindings: Record<string, string> = { OFFLINE_CHUNK_DELAY_MS: "1", ADMIN_TOKEN: "test-admin-token-0123456789", TURN_RATE_LIMIT: "8", TURN_RATE_WINDOW_SECONDS: "60" };
        if (model !== "offline") Object.assign(bindings, { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: inject("openaiUrl"), OPENAI_API: model, CHAT_MODEL: "fake-model" });
        return {
          wrangler: { configPath: "./wrangler.toml" },
          miniflare: {
            bindings: { ...bindings, FAULT_CONTROL_URL: inject("faultControlUrl"), OPENAI_FAKE_URL: inject("openaiUrl") },
            hyperdrives: { HYPERDRIVE: opts.db === "fault-proxy" ? inject("faultDatabaseUrl") : inject("databaseUrl") },
          },
        };
      }),
    ],
    test: { name, include, exclude: opts.exclude, testTimeout: 30_000, hookTimeout: 30_000 },
  });

export default defineConfig({
  test: {
    // Once for all projects: one Postgres, one fake model server.
    globalSetup: ["./test/global-setup.ts"],
    projects: [
      project("responses", ["test/**/*.test.ts"], { exclude: ["test/**/*.offline.test.ts", "test/**/*.fault.test.ts"] }),
      project("chat-completions", ["test/agent.turn.test.ts"], { model: "chat" }),
      project("offline", ["test/**/*.offline.test.ts"], { model: "offline" }),
      project("faults", ["test/**/*.fault.test.ts"], { db: "fault-proxy" }),
    ],
  },
});
