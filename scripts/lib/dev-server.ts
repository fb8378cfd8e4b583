// The local stack as `npm run dev` runs it, shared with the browser tests: build the web chat, then
// `wrangler dev` against a Postgres, and wait until the Worker answers.
import { spawn, type ChildProcess } from "node:child_process";
import { withPassword } from "./postgres.ts";

const root = new URL("../../", import.meta.url).pathname;
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

/** Model, auth and limit settings that reach the Worker as vars when set in the shell. */
export const PASSED_VARS = [
  "OPENAI_API_KEY",
  "OPENAI_BASE_URL",
  "OPENAI_API",
  "CHAT_MODEL",
  "ADMIN_TOKEN",
  "EMBEDDING_MODEL",
  "EMBEDDING_DIMENSIONS",
  "TURN_RATE_LIMIT",
  "TURN_RATE_WINDOW_SECONDS",
  "OFFLINE_CHUNK_DELAY_MS",
];

function run(cmd: string, args: string[], stdio: "inherit" | "pipe", env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", stdio, stdio], env });
    let out = "";
    child.stdout?.on("data", (d) => (out += d));
    child.stderr?.on("data", (d) => (out += d));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}\n${out}`))));
  });
}

/**
 * Builds web/ into web/dist, which wrangler.toml's [assets] serves: the production bundle, even when
 * called from a test run (vitest sets NODE_ENV=test, which would build React's development one).
 */
export async function buildWeb(stdio: "inherit" | "pipe" = "inherit"): Promise<void> {
  await run(bin("vite"), ["build", "--config", "web/vite.config.ts"], stdio, { ...process.env, NODE_ENV: "production" });
}

/** One call to the running Worker's API with a bearer token: the status and the JSON body (null when there is none). */
export async function callApi(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

export type WorkerOptions = {
  port: number;
  databaseUrl: string;
  /** Worker vars; ENVIRONMENT is always development here. */
  vars?: Record<string, string>;
  /** Where wrangler keeps Durable Object and KV state (default: .wrangler/state). */
  persistTo?: string;
  inspectorPort?: number;
  /** Where wrangler's output goes: the terminal, or a callback per chunk. */
  output?: "inherit" | ((chunk: string) => void);
  /** Keep wrangler's colours though its output is piped to a callback (for a terminal). */
  color?: boolean;
};

export type DevWorker = { url: string; process: ChildProcess; stop: () => Promise<void> };

export async function startWorker(opts: WorkerOptions): Promise<DevWorker> {
  const vars = { ...opts.vars, ENVIRONMENT: "development" };
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(opts.port), ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])];
  if (opts.persistTo) args.push("--persist-to", opts.persistTo);
  if (opts.inspectorPort) args.push("--inspector-port", String(opts.inspectorPort));
  const output = opts.output ?? "inherit";
  const child = spawn(bin("wrangler"), args, {
    cwd: root,
    stdio: ["ignore", output === "inherit" ? "inherit" : "pipe", output === "inherit" ? "inherit" : "pipe"],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE: withPassword(opts.databaseUrl),
      ...(opts.color && { FORCE_COLOR: "1" }),
    },
  });
  if (typeof output === "function") {
    child.stdout?.on("data", (d) => output(String(d)));
    child.stderr?.on("data", (d) => output(String(d)));
  }
  const url = `http://127.0.0.1:${opts.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForWorker(url, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, process: child, stop };
}

/** Until /health answers at all (503 is fine: the Worker is up, whatever Postgres says). */
async function waitForWorker(url: string, child: ChildProcess, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode} before it served ${url}`);
    try {
      await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw new Error(`wrangler dev did not answer on ${url} within ${timeoutMs / 1000} s`);
}
