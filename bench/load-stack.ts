// The local stack `bench:load` runs against when no --url is given: a fake model, a Postgres behind a
// TCP proxy the fault run can cut, and the dev server (wrangler dev) pointed at the proxy. Loopback only.
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, cpSync, createWriteStream, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startPglite } from "../scripts/lib/postgres.ts";
import { startFakeOpenAI } from "../test/support/fake-openai.ts";
import { startTcpProxy, type TcpProxy } from "../test/support/tcp-proxy.ts";

export type Stack = {
  url: string;
  /** Postgres directly, not through the proxy: the benchmark's own row counts must not be cut. */
  databaseUrl: string;
  proxy: TcpProxy;
  log: () => string;
  stop: () => Promise<void>;
};

export type StackOptions = { db: "postgres" | "pglite"; api: "chat" | "responses"; firstTokenMs: number; chunkMs: number; maxConnections: number };

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
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=${maxConnections} -c fsync=off -c synchronous_commit=off`;
  asPostgres(`${PG_BIN}/pg_ctl -D ${dir}/data -l ${dir}/log -w -o '${opts}' start`);
  return {
    host: "127.0.0.1",
    port,
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
  for (const p of ["src", "scripts", "migrations", "web", "wrangler.toml", "package.json", "tsconfig.json"]) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts everything; on failure stops what already started. Every part is stopped in reverse order. */
export async function startStack(o: StackOptions, onLog: (line: string) => void): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => {});
  };
  try {
    const fake = await startFakeOpenAI({ firstTokenDelayMs: o.firstTokenMs, chunkDelayMs: o.chunkMs });
    stops.push(fake.stop);
    let target: { host: string; port: number };
    if (o.db === "pglite") {
      const pglite = await startPglite();
      stops.push(pglite.stop);
      const u = new URL(pglite.url);
      target = { host: u.hostname, port: Number(u.port) };
    } else {
      const pg = await startPostgres(o.maxConnections);
      stops.push(pg.stop);
      target = pg;
    }
    const databaseUrl = `postgres://postgres:x@${target.host}:${target.port}/postgres`;
    const proxy = await startTcpProxy(target);
    stops.push(proxy.stop);

    const src = snapshot();
    stops.push(async () => src.remove());
    const port = await freePort();
    const logDir = mkdtempSync(join(tmpdir(), "tl-bench-log-"));
    const logFile = join(logDir, "dev.log");
    const out = createWriteStream(logFile);
    const dev = spawn(process.execPath, [join(src.dir, "scripts/dev.ts")], {
      cwd: src.dir,
      // Its own process group, so stopping it takes wrangler and workerd along.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        DATABASE_URL: `postgres://postgres:x@127.0.0.1:${proxy.port}/postgres`,
        OPENAI_API_KEY: "bench",
        OPENAI_BASE_URL: fake.url,
        OPENAI_API: o.api,
        TURN_RATE_LIMIT: "10000",
        PORT: String(port),
        FORCE_COLOR: "0",
        PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH ?? ""}`,
      },
    });
    dev.stdout.pipe(out);
    dev.stderr.pipe(out);
    stops.push(async () => {
      if (dev.exitCode === null && dev.pid) {
        const exited = new Promise((r) => dev.once("exit", r));
        try {
          process.kill(-dev.pid, "SIGTERM");
        } catch {}
        await Promise.race([exited, sleep(10_000)]);
        if (dev.exitCode === null) {
          try {
            process.kill(-dev.pid, "SIGKILL");
          } catch {}
        }
      }
      out.end();
      rmSync(logDir, { recursive: true, force: true });
    });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (dev.exitCode !== null) throw new Error(`dev server exited (${dev.exitCode}):\n${readFileSync(logFile, "utf8").slice(-3000)}`);
      const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`dev server not healthy after 120 s:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
      await sleep(500);
    }
    onLog(`[bench] stack up: server ${url}, model ${fake.url} (${o.api}), ${o.db} at ${target.host}:${target.port} behind proxy :${proxy.port}`);
    return { url, databaseUrl, proxy, log: () => readFileSync(logFile, "utf8"), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
