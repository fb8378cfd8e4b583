// `npm run dev`: Postgres (embedded PGlite in .data/, or DATABASE_URL), migrations, then `wrangler dev`.
import { spawn } from "node:child_process";
import { applyMigrations, startPglite, withPassword, type LocalPostgres } from "./lib/postgres.ts";

const port = process.env.PORT ?? "8787";
const dataDir = new URL("../.data/pglite", import.meta.url).pathname;

let local: LocalPostgres | undefined;
let url = process.env.DATABASE_URL;
if (!url) {
  local = await startPglite({ dataDir, port: process.env.PGLITE_PORT ? Number(process.env.PGLITE_PORT) : undefined });
  url = local.url;
  console.log(`[dev] embedded Postgres (PGlite + pgvector) at ${url}, data in .data/pglite`);
} else {
  console.log(`[dev] using DATABASE_URL (${new URL(url).host})`);
}
await applyMigrations(url);
console.log("[dev] migrations applied");

// Model settings from the shell reach the Worker as vars; .dev.vars works too.
const passed = ["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API", "CHAT_MODEL", "ADMIN_TOKEN", "EMBEDDING_MODEL", "EMBEDDING_DIMENSIONS", "TURN_RATE_LIMIT", "TURN_RATE_WINDOW_SECONDS"];
const vars = passed.flatMap((k) =>
  process.env[k] ? ["--var", `${k}:${process.env[k]}`] : [],
);
// Development: the admin token defaults to dev-admin-token (src/config.ts); deployed, there is no default.
vars.push("--var", "ENVIRONMENT:development");
console.log(`[dev] admin token: ${process.env.ADMIN_TOKEN ? "$ADMIN_TOKEN" : "dev-admin-token"}`);
const offline = !process.env.OPENAI_API_KEY && !process.env.OPENAI_BASE_URL;
console.log(`[dev] model: ${offline ? "offline (set OPENAI_API_KEY or OPENAI_BASE_URL for a real one)" : process.env.CHAT_MODEL ?? "gpt-4o-mini"}`);

const wrangler = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", port, ...vars], {
  stdio: "inherit",
  env: {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE: withPassword(url),
  },
});

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  if (wrangler.exitCode === null) {
    wrangler.kill("SIGTERM");
    await new Promise((r) => wrangler.once("exit", r));
  }
  await local?.stop();
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
wrangler.on("exit", (code) => void stop(code ?? 0));
