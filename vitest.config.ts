import "./test/support/quiet-stderr.ts";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig, defineProject } from "vitest/config";
import { experimental_readRawConfig } from "wrangler";

type Target = "database" | "fault-proxy" | "neon";

/** One Workers project per configuration the suite must cover; each gets its own Miniflare. */
const project = (name: string, include: string[], opts: { db?: Target; model?: "responses" | "chat" | "offline"; exclude?: string[] } = {}) =>
  defineProject({
    plugins: [
      cloudflareTest(({ inject }) => {
        const model = opts.model ?? "responses";
        const bindings: Record<string, string> = {
          OFFLINE_CHUNK_DELAY_MS: "1",
          ADMIN_TOKEN: "test-admin-token-0123456789",
          TURN_RATE_LIMIT: "8",
          TURN_RATE_WINDOW_SECONDS: "60",
          METRICS_SINK: "local",
          FLAG_CACHE_SECONDS: "1",
          MAX_SOCKETS_PER_THREAD: "6",
          MAX_SOCKETS_PER_USER: "10",
          CORS_ORIGINS: "https://app.threadline.test",
        };
        if (model !== "offline") Object.assign(bindings, { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: inject("openaiUrl"), OPENAI_API: model, CHAT_MODEL: "fake-model" });
        if (opts.db === "neon") Object.assign(bindings, { DATABASE_URL: inject("databaseUrl"), NEON_WS_PROXY: inject("neonWsProxy") });
        return {
          wrangler: { configPath: opts.db === "neon" ? withoutHyperdrive() : "./wrangler.toml" },
          miniflare: {
            bindings: {
              ...bindings,
              FAULT_CONTROL_URL: inject("faultControlUrl"),
              OPENAI_FAKE_URL: inject("openaiUrl"),
              // The test MCP server is on 127.0.0.1: only the allow-list lets the URL policy pass it. A small timeout for its slow tool.
              MCP_TEST_SERVER_URL: inject("mcpServerUrl"),
              MCP_ALLOWED_ORIGINS: inject("mcpServerUrl"),
              MCP_SECRET_KEY: "test-mcp-secret-key-0123456789abcdef",
              MCP_TIMEOUT_MS: "3000",
            },
            ...(opts.db !== "neon" && { hyperdrives: { HYPERDRIVE: opts.db === "fault-proxy" ? inject("faultDatabaseUrl") : inject("databaseUrl") } }),
          },
        };
      }),
    ],
    // Fault tests cut the one shared proxy: their files must not overlap.
    test: { name, include, exclude: opts.exclude, testTimeout: 30_000, hookTimeout: 30_000, ...(opts.db === "fault-proxy" && { fileParallelism: false }) },
  });

/**
 * wrangler.toml less its [[hyperdrive]], for the neon project: the plugin merges bindings into the
 * config's, so none can be taken away from a project that reads wrangler.toml itself.
 */
function withoutHyperdrive(): string {
  const { hyperdrive: _, ...config } = experimental_readRawConfig({ config: "wrangler.toml" }).rawConfig;
  const path = resolve(".wrangler/vitest/wrangler.neon.json");
  mkdirSync(resolve(path, ".."), { recursive: true });
  writeFileSync(path, JSON.stringify({ ...config, main: resolve(config.main ?? "src/index.ts") }));
  return path;
}

// wrangler.toml serves web/dist as assets; the Workers projects need the folder, not the page (`npm run build:web` makes it).
mkdirSync(resolve("web/dist"), { recursive: true });

export default defineConfig({
  test: {
    // Once for all projects: one Postgres, one fake model server.
    globalSetup: ["./test/global-setup.ts"],
    // Every request and turn logs a JSON line: show them only for the tests that fail.
    silent: "passed-only",
    projects: [
      project("responses", ["test/**/*.test.ts"], { exclude: ["test/**/*.offline.test.ts", "test/**/*.fault.test.ts", "test/**/*.node.test.ts", "test/e2e/**"] }),
      project("chat-completions", ["test/agent.turn.test.ts"], { model: "chat" }),
      project("offline", ["test/**/*.offline.test.ts"], { model: "offline" }),
      project("faults", ["test/**/*.fault.test.ts"], { db: "fault-proxy" }),
      // The database-touching suite again over the second transport: Neon's driver, no Hyperdrive binding.
      project("neon", ["test/api.*.test.ts", "test/db.*.test.ts", "test/agent.turn.test.ts", "test/health.test.ts"], {
        db: "neon",
        exclude: ["test/**/*.offline.test.ts", "test/**/*.fault.test.ts", "test/**/*.node.test.ts"],
      }),
      // Plain Node, no Workers runtime: tests that drive Postgres or the tooling from outside (e.g. migrations on a database of their own).
      defineProject({ test: { name: "node", include: ["test/**/*.node.test.ts"], environment: "node", testTimeout: 120_000, hookTimeout: 60_000 } }),
      // The web chat in headless Chromium against `wrangler dev`, started as `npm run dev` starts it. A group of its own
      // (sequence.groupOrder) so a browser and a second workerd never compete with other projects for the CPU.
      defineProject({
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          expect: { poll: { timeout: 15_000 } },
        },
      }),
    ],
  },
});
