// The local stack `bench:load` and `bench:turns` run against: a fake model, a Postgres behind a TCP
// proxy the fault run can cut, the dev server (wrangler dev) pointed at the proxy and, for
// bench:turns, the bare baseline Worker (bench/bare) beside it. Loopback only.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, createWriteStream, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startPglite } from "../scripts/lib/postgres.ts";
import { startFakeOpenAI } from "../test/support/fake-openai.ts";
import { startTcpProxy, type TcpProxy } from "../test/support/tcp-proxy.ts";

export type Stack = {
  url: string;
  /** The bare baseline Worker (bench/bare), when asked for. */
  bareUrl?: string;
  /** Postgres directly, not through the proxy: the benchmark's own row counts must not be cut. */
  databaseUrl: string;
  proxy: TcpProxy;
  log: () => string;
  bareLog: () => string;
  /** For CPU accounting: the servers' process groups (wrangler and its workerd) and the postmaster (with pglite, none). */
  pids: { server: number; bare?: number; postgres?: number };
  /** The servers' inspector ports (bench/cpu-profile.ts). */
  inspectors: { server: number; bare?: number };
  stop: () => Promise<void>;
};

export type StackOptions = {
  db: "postgres" | "pglite";
  api: "chat" | "responses";
  firstTokenMs: number;
  chunkMs: number;
  maxConnections: number;
  /** A model server the caller runs (then firstTokenMs and chunkMs are its business); default: the fake, started here. */
  modelUrl?: string;
  bare?: boolean;
};

const PG_BIN = "/usr/lib/postgresql/15/bin";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startPostgres(maxConnections: number) {
  execFileSync("bash", [new URL("../.ci/install-postgres.sh", import.meta.url).pathname], { stdio: "inherit" });
  const dir = mkdtempSync(join(tmpdir(), "tl-bench-pg-"));
  chmodSync(dir, 0o755);
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
  chownSync(dir, uid, uid);
  const port = await freePort();
  // initdb and pg_ctl refuse to run as root.
  const asPostgres = (cmd: string) => execFileSync("su", ["postgres", "-c", cmd], { stdio: "pipe" });
  asPostgres(`${PG_BIN}/initdb -D ${dir}/data -A trust -U postgres`);
  // Durability settings off: this measures the service, not the disk of a shared machine.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=${maxConnections} -c fsync=off -c synchronous_commit=off -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all`;
  asPostgres(`${PG_BIN}/pg_ctl -D ${dir}/data -l ${dir}/log -w -o '${opts}' start`);
  return {
    host: "127.0.0.1",
    port,
    pid: () => Number(readFileSync(`${dir}/data/postmaster.pid`, "utf8").split("\n")[0]),
    stop: async () => {
      try {
        asPostgres(`${PG_BIN}/pg_ctl -D ${dir}/data -m immediate stop`);
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const ROOT = new URL("..", import.meta.url).pathname;

/**
 * wrangler dev rebuilds and restarts the Worker whenever a source file changes, which drops every
 * WebSocket; others edit this tree while the benchmark runs, so it serves a copy taken at start.
 * The copy also keeps its Durable Object storage (.wrangler/) apart from anyone else's dev server.
 */
function snapshot(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "tl-bench-src-"));
  for (const p of ["src", "scripts", "migrations", "web", "bench/bare", "wrangler.toml", "package.json", "tsconfig.json"]) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A server in its own process group (so stopping it takes wrangler and workerd along), its output in a temp file. */
function spawnServer(args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const logDir = mkdtempSync(join(tmpdir(), "tl-bench-log-"));
  const logFile = join(logDir, "server.log");
  const out = createWriteStream(logFile);
  const child: ChildProcess = spawn(args[0]!, args.slice(1), { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0", ...env } });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const log = () => readFileSync(logFile, "utf8");
  const pid = child.pid!;
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {}
  };
  const stop = async () => {
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", r));
    kill("SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
    // Whatever of the group outlived its leader (a workerd after a crashed wrangler).
    kill("SIGKILL");
    out.end();
    rmSync(logDir, { recursive: true, force: true });
  };
  /** Until `url` answers at all; `healthy` says whether the answer will do. */
  const ready = async (url: string, healthy: (r: Response) => boolean, what: string) => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}):\n${log().slice(-3000)}`);
      if (await fetch(url).then(healthy, () => false)) return;
      if (Date.now() > deadline) throw new Error(`${what} not ready after 120 s:\n${log().slice(-3000)}`);
      await sleep(500);
    }
  };
  return { log, stop, ready, pid };
}

/** Starts everything; on failure stops what already started. Every part is stopped in reverse order. */
export async function startStack(o: StackOptions, onLog: (line: string) => void): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => {});
  };
  try {
    let modelUrl = o.modelUrl;
    if (!modelUrl) {
      const fake = await startFakeOpenAI({ firstTokenDelayMs: o.firstTokenMs, chunkDelayMs: o.chunkMs });
      stops.push(fake.stop);
      modelUrl = fake.url;
    }
    let target: { host: string; port: number };
    let postgresPid: (() => number) | undefined;
    if (o.db === "pglite") {
      const pglite = await startPglite();
      stops.push(pglite.stop);
      const u = new URL(pglite.url);
      target = { host: u.hostname, port: Number(u.port) };
    } else {
      const pg = await startPostgres(o.maxConnections);
      stops.push(pg.stop);
      target = pg;
      postgresPid = pg.pid;
    }
    const databaseUrl = `postgres://postgres:x@${target.host}:${target.port}/postgres`;
    const proxy = await startTcpProxy(target);
    stops.push(proxy.stop);
    const proxiedUrl = `postgres://postgres:x@127.0.0.1:${proxy.port}/postgres`;

    const src = snapshot();
    stops.push(async () => src.remove());
    const bin = join(ROOT, "node_modules/.bin");
    const [port, inspector] = [await freePort(), await freePort()];
    const model = { OPENAI_API_KEY: "bench", OPENAI_BASE_URL: modelUrl, OPENAI_API: o.api };
    // The project's Node 22 first: wrangler's `#!/usr/bin/env node` would otherwise find the system's.
    const PATH = `${bin}:${process.env.PATH ?? ""}`;
    // Wrangler's local trace store (on by default, `X_LOCAL_OBSERVABILITY`) writes every span of both
    // Workers to SQLite on workerd's one thread: bench/README.md, "Figures without wrangler's local trace store".
    const tooling = { X_LOCAL_OBSERVABILITY: "false" };
    const dev = spawnServer([process.execPath, join(src.dir, "scripts/dev.ts")], src.dir, {
      ...model,
      ...tooling,
      DATABASE_URL: proxiedUrl,
      TURN_RATE_LIMIT: "10000",
      PORT: String(port),
      INSPECTOR_PORT: String(inspector),
      PATH,
    });
    stops.push(dev.stop);
    const url = `http://127.0.0.1:${port}`;
    await dev.ready(`${url}/health`, (r) => r.ok, "dev server");
    let bare: ReturnType<typeof spawnServer> | undefined;
    let bareUrl: string | undefined;
    let bareInspector: number | undefined;
    if (o.bare) {
      // After the dev server: it has applied the migrations the baseline's writes need.
      const barePort = await freePort();
      bareInspector = await freePort();
      const vars = Object.entries({ ...model, ENVIRONMENT: "development" }).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
      bare = spawnServer(
        [
          join(bin, "wrangler"),
          "dev",
          "--config",
          "bench/bare/wrangler.toml",
          "--ip",
          "127.0.0.1",
          "--port",
          String(barePort),
          "--inspector-port",
          String(bareInspector),
          "--persist-to",
          join(src.dir, ".wrangler-bare"),
          ...vars,
        ],
        src.dir,
        { PATH, ...tooling, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE: proxiedUrl },
      );
      stops.push(bare.stop);
      bareUrl = `http://127.0.0.1:${barePort}`;
      await bare.ready(bareUrl, () => true, "bare baseline Worker");
    }
    onLog(
      `[bench] stack up: server ${url}${bareUrl ? `, bare baseline ${bareUrl}` : ""}, model ${modelUrl} (${o.api}), ${o.db} at ${target.host}:${target.port} behind proxy :${proxy.port}`,
    );
    const pids = { server: dev.pid, bare: bare?.pid, postgres: postgresPid?.() };
    const inspectors = { server: inspector, bare: bareInspector };
    return { url, bareUrl, databaseUrl, proxy, log: dev.log, bareLog: () => bare?.log() ?? "", pids, inspectors, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
