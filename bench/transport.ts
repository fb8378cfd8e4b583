// npm run bench:transport -- [--database URL] [--n 50]
// A typical turn's database work (principal, thread, turn gate, two outbox transactions) run inside
// workerd through the app's own withDb, over each transport: Hyperdrive + pg, and Neon's driver
// through a local WebSocket-to-TCP proxy. Postgres: --database / BENCH_DATABASE_URL, else an embedded
// PGlite. Prints per-iteration latency (timed inside the Worker) as a markdown table.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { unstable_startWorker } from "wrangler";
import { applyMigrations, startPglite, withPassword, type LocalPostgres } from "../scripts/lib/postgres.ts";
import { startWsProxy } from "../test/support/ws-proxy.ts";

const { values: args } = parseArgs({
  options: { database: { type: "string", default: process.env.BENCH_DATABASE_URL }, n: { type: "string", default: "50" } },
});
const n = Number(args.n);
let local: LocalPostgres | undefined;
const url = withPassword(args.database || (local = await startPglite()).url);
await applyMigrations(url);
const pgAddr = new URL(url);
const proxy = await startWsProxy({ host: pgAddr.hostname, port: Number(pgAddr.port || 5432) });

// A config of its own (wrangler.toml's Durable Objects are not in this Worker), in a temporary folder.
const dir = mkdtempSync(join(tmpdir(), "bench-transport-"));
writeFileSync(
  join(dir, "wrangler.json"),
  JSON.stringify({
    name: "bench-transport",
    main: new URL("./transport-worker.ts", import.meta.url).pathname,
    compatibility_date: "2026-08-01",
    compatibility_flags: ["nodejs_compat"],
    hyperdrive: [{ binding: "HYPERDRIVE", id: "bench", localConnectionString: url }],
    vars: { DATABASE_URL: url, NEON_WS_PROXY: `127.0.0.1:${proxy.port}` },
  }),
);
const worker = await unstable_startWorker({
  config: join(dir, "wrangler.json"),
  dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, watch: false, logLevel: "warn" },
});
await worker.ready;
const call = async <T>(path: string): Promise<T> => {
  const res = await worker.fetch(`http://bench${path}`);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (res.status === 204 ? undefined : await res.json()) as T;
};

const fixture = await call<{ userId: string }>("/setup");
const rows: string[] = [];
try {
  for (const workload of ["connect", "turn", "turn-one-connection"]) {
    for (const transport of ["hyperdrive", "neon"]) {
      const q = `transport=${transport}&fixture=${encodeURIComponent(JSON.stringify(fixture))}`;
      await call(`/${workload}?${q}&n=5`); // warm-up: isolate, drivers, Postgres caches
      const ms = (await call<number[]>(`/${workload}?${q}&n=${n}`)).sort((a, b) => a - b);
      const at = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!.toFixed(1);
      const mean = (ms.reduce((a, b) => a + b, 0) / ms.length).toFixed(1);
      rows.push(`| ${workload} | ${transport} | ${at(0.5)} | ${at(0.95)} | ${mean} |`);
    }
  }
} finally {
  await call(`/teardown?userId=${fixture.userId}`);
  await worker.dispose();
  rmSync(dir, { recursive: true, force: true });
  await proxy.stop();
  await local?.stop();
}
console.log(`Postgres: ${args.database ? "given" : "embedded PGlite"}, ${n} iterations each, ms per iteration inside workerd\n`);
console.log("| workload | transport | median | p95 | mean |\n|---|---|---|---|---|");
console.log(rows.join("\n"));
console.log(`\nWebSocket connections through the proxy: ${proxy.connections()}`);
