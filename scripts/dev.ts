// `npm run dev`: Postgres (embedded PGlite in .data/, or DATABASE_URL), migrations, the web chat
// build, `wrangler dev`, and a demo user whose key and sign-in link are printed.
import { createInterface } from "node:readline";
import { ensureDemoUser } from "./lib/demo.ts";
import { devLine, lines } from "./lib/dev-log.ts";
import { buildWeb, PASSED_VARS, startWorker } from "./lib/dev-server.ts";
import { applyMigrations, startPglite, type LocalPostgres } from "./lib/postgres.ts";

const port = Number(process.env.PORT ?? "8787");
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

const started = Date.now();
await buildWeb();
console.log(`[dev] web chat built into web/dist in ${((Date.now() - started) / 1000).toFixed(1)} s`);

// Model settings from the shell reach the Worker as vars; .dev.vars works too.
const vars = Object.fromEntries(PASSED_VARS.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
// Development: the admin token defaults to dev-admin-token (src/config.ts); deployed, there is no default.
const adminToken = process.env.ADMIN_TOKEN ?? "dev-admin-token";
console.log(`[dev] admin token: ${process.env.ADMIN_TOKEN ? "$ADMIN_TOKEN" : "dev-admin-token"}`);
const offline = !process.env.OPENAI_API_KEY && !process.env.OPENAI_BASE_URL;
console.log(`[dev] model: ${offline ? "offline (set OPENAI_API_KEY or OPENAI_BASE_URL for a real one)" : (process.env.CHAT_MODEL ?? "gpt-4o-mini")}`);

let stopping = false;
let stopWorker: (() => Promise<void>) | undefined;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  await stopWorker?.();
  await local?.stop();
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

// One short line per request and turn (DEV_LOG=json: the JSON lines as the Worker writes them).
const color = Boolean(process.stdout.isTTY);
const output = lines((line) => {
  const shown = devLine(line, { color, json: process.env.DEV_LOG === "json" });
  if (shown !== null) process.stdout.write(`${shown}\n`);
});
const inspectorPort = process.env.INSPECTOR_PORT ? Number(process.env.INSPECTOR_PORT) : undefined;
const worker = await startWorker({ port, databaseUrl: url, vars, output, color, inspectorPort }).catch((err) => {
  console.error(`[dev] ${err instanceof Error ? err.message : String(err)}`);
  return stop(1);
});
if (worker) {
  stopWorker = worker.stop;
  worker.process.on("exit", (code) => void stop(code ?? 0));
  try {
    const demo = await ensureDemoUser(worker.url, adminToken);
    const banner = (first: boolean) =>
      [
        "",
        `[dev] web chat:  ${worker.url}/`,
        `[dev] demo user: ${demo.email}${first && demo.created ? " (created, with 4 demo documents)" : ""}`,
        `[dev] API key:   ${demo.apiKey}   (kept in .data/demo.json)`,
        `[dev] sign in:   ${worker.url}/#key=${demo.apiKey}`,
        ...(process.stdin.isTTY ? ["[dev] press Enter to show this again, Ctrl-C to stop"] : []),
        "",
      ].join("\n");
    console.log(banner(true));
    // The log scrolls the link away: Enter prints it again.
    if (process.stdin.isTTY) createInterface({ input: process.stdin, terminal: false }).on("line", () => console.log(banner(false)));
  } catch (err) {
    console.error(`[dev] demo user not ready: ${err instanceof Error ? err.message : String(err)}`);
  }
}
