// npm run bench:load -- --threads N --turns M [--first-token-ms X --chunk-ms Y] [--api chat|responses]
//   [--db postgres|pglite] [--fault-after-ms A --fault-ms D] [--think-ms T] [--url URL [--database URL]]
// N threads, each its own user and WebSocket, run M turns each: concurrent across threads,
// sequential within one. Reports turns/s, the time to the first streamed text chunk minus the fake
// model's own first-token delay (what the service adds), turn durations and errors; then checks,
// once the agents' outboxes have drained, that Postgres holds exactly the messages of the turns.
import { randomUUID } from "node:crypto";
import { cpus, loadavg } from "node:os";
import pg from "pg";
import { z } from "zod";
import { cliArgs } from "./cli.ts";
import { startStack, type Stack } from "./load-stack.ts";
import { connectAgent, sendTurn, type Marks } from "./ws-client.ts";

const int = (min: number) => z.coerce.number().int().min(min);
const shape = {
  threads: int(1).max(2000).default(10),
  turns: int(1).max(1000).default(3),
  "first-token-ms": int(0).max(60_000).default(200),
  "chunk-ms": int(0).max(10_000).default(10),
  api: z.enum(["chat", "responses"]).default("chat"),
  db: z.enum(["postgres", "pglite"]).default("postgres"),
  "max-connections": int(10).max(10_000).default(300),
  url: z.url().optional(),
  database: z.string().optional(),
  "admin-token": z.string().default("dev-admin-token"),
  "fault-after-ms": int(0).optional(),
  "fault-ms": int(1).max(600_000).default(5_000),
  "think-ms": int(0).max(600_000).default(0),
  "turn-timeout-ms": int(1_000).default(60_000),
  "drain-timeout-ms": int(1_000).default(180_000),
  "setup-concurrency": int(1).max(200).default(20),
};
const Args = z
  .object(shape)
  .refine((a) => !a.url || /^https?:\/\/127\.0\.0\.1(:\d+)?\/?$/.test(a.url), "--url must be a loopback server (127.0.0.1)")
  .refine((a) => !(a.url && a["fault-after-ms"] !== undefined), "a fault run needs the benchmark's own stack (no --url): it cuts Postgres through its proxy");
const a = cliArgs(Object.keys(shape), Args);

const log = (s: string) => console.log(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let stopping = false;
let stack: Stack | undefined;
const fixtures: Fixture[] = [];
// A subdomain of the test-data domain: `npm run db:cleanup-test-data` finds users a killed run left behind.
const EMAIL_DOMAIN = "load.bench.tests.threadline.invalid";

type Fixture = { userId: string; apiKey: string; threadId: string; ws?: WebSocket };
type Turn = Marks & { thread: number; index: number; sentAt: number; duringFault: boolean };

/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function api<T>(base: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as T };
}

const connect = (base: string, f: Fixture) => connectAgent(new WebSocket(`${base.replace(/^http/, "ws")}/agents/thread-agent/${f.threadId}?token=${encodeURIComponent(f.apiKey)}`));

/** One turn on an open socket; resolves when it is done, failed, timed out, or the socket closed. */
const turn = (ws: WebSocket, t: Turn, text: string) => sendTurn(ws, text, t, { timeoutMs: a["turn-timeout-ms"] });

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "n/a");
const summary = (xs: number[]) => `p50 ${ms(pct(xs, 50))}  p95 ${ms(pct(xs, 95))}  p99 ${ms(pct(xs, 99))}  max ${ms(Math.max(...xs))}  (n=${xs.length})`;

type Ids = Map<string, Set<string>>;
const total = (ids: Ids) => [...ids.values()].reduce((n, s) => n + s.size, 0);

/** Message ids per thread in Postgres: directly when the database is known, else through the API (which reads Postgres). */
async function idsInPostgres(base: string, client: pg.Client | undefined): Promise<Ids> {
  const ids: Ids = new Map(fixtures.map((f) => [f.threadId, new Set<string>()]));
  if (client) {
    const r = await client.query<{ thread_id: string; id: string }>("select thread_id, id from messages where thread_id = any($1::uuid[])", [fixtures.map((f) => f.threadId)]);
    for (const row of r.rows) ids.get(row.thread_id)!.add(row.id);
    return ids;
  }
  await pool(fixtures, 10, async (f) => {
    let cursor: number | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await api<{ messages: { id: string }[]; nextCursor: number | null }>(
        base,
        "GET",
        `/api/v1/threads/${f.threadId}/messages?limit=500${cursor ? `&cursor=${cursor}` : ""}`,
        f.apiKey,
      );
      if (r.status !== 200) throw new Error(`messages of ${f.threadId}: ${r.status}`);
      for (const m of r.json.messages) ids.get(f.threadId)!.add(m.id);
      if (!r.json.nextCursor) break;
      cursor = r.json.nextCursor;
    }
  });
  return ids;
}

/** Message ids per thread in each agent's own transcript (its SQLite): what Postgres must end up holding. */
async function idsInAgents(base: string): Promise<Ids> {
  const ids: Ids = new Map();
  await pool(fixtures, 10, async (f) => {
    const r = await api<{ id: string }[]>(base, "GET", `/agents/thread-agent/${f.threadId}/get-messages`, f.apiKey);
    if (r.status !== 200) throw new Error(`agent transcript of ${f.threadId}: ${r.status}`);
    ids.set(f.threadId, new Set(r.json.map((m) => m.id)));
  });
  return ids;
}

async function main(): Promise<number> {
  if (!a.url) stack = await startStack({ db: a.db, api: a.api, firstTokenMs: a["first-token-ms"], chunkMs: a["chunk-ms"], maxConnections: a["max-connections"] }, log);
  const base = (a.url ?? stack!.url).replace(/\/$/, "");
  const databaseUrl = a.database ?? stack?.databaseUrl;
  const db = databaseUrl ? new pg.Client({ connectionString: databaseUrl }) : undefined;
  db?.on("error", () => {});
  await db?.connect();
  try {
    const runId = randomUUID().slice(0, 8);
    const setupStart = performance.now();
    await pool(
      Array.from({ length: a.threads }, (_, i) => i),
      a["setup-concurrency"],
      async (i) => {
        if (stopping) return;
        const u = await api<{ user: { id: string }; apiKey: string }>(base, "POST", "/api/v1/users", a["admin-token"], {
          email: `load-${runId}-${i}@${EMAIL_DOMAIN}`,
          name: "bench",
        });
        if (u.status !== 201) throw new Error(`create user: ${u.status} ${JSON.stringify(u.json)}`);
        const f: Fixture = { userId: u.json.user.id, apiKey: u.json.apiKey, threadId: "" };
        fixtures.push(f);
        const t = await api<{ thread: { id: string } }>(base, "POST", "/api/v1/threads", f.apiKey, { title: `load ${i}` });
        if (t.status !== 201) throw new Error(`create thread: ${t.status} ${JSON.stringify(t.json)}`);
        f.threadId = t.json.thread.id;
        f.ws = await connect(base, f);
      },
    );
    if (stopping) return 130;
    log(`[bench] ${a.threads} users, threads and sockets ready in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);

    const turns: Turn[] = [];
    const fault: { downAt?: number; upAt?: number; drainedAt?: number; peak: { threads: number; messages: number } } = { peak: { threads: 0, messages: 0 } };
    const runStart = performance.now();
    type Health = { outbox?: { threads: number; messages: number } | null };
    const backlog = () =>
      api<Health>(base, "GET", "/health", a["admin-token"]).then(
        (r) => r.json?.outbox ?? undefined,
        () => undefined,
      );
    const faultTask = (async () => {
      if (a["fault-after-ms"] === undefined || !stack) return;
      await sleep(a["fault-after-ms"]);
      if (stopping) return;
      stack.proxy.setDown(true);
      fault.downAt = performance.now();
      log(`[bench] Postgres cut at +${((fault.downAt - runStart) / 1000).toFixed(1)} s for ${a["fault-ms"]} ms`);
      // /health still answers (503) while Postgres is down, with the agents' reported outbox backlog.
      const polling = (async () => {
        for (let i = 0; fault.upAt === undefined && i < 10_000; i++) {
          const b = await backlog();
          if (b && b.messages > fault.peak.messages) fault.peak = b;
          await sleep(250);
        }
      })();
      await sleep(a["fault-ms"]);
      stack.proxy.setDown(false);
      fault.upAt = performance.now();
      await polling;
      log(`[bench] Postgres back at +${((fault.upAt - runStart) / 1000).toFixed(1)} s; outbox backlog peaked at ${fault.peak.messages} messages in ${fault.peak.threads} threads`);
      for (let i = 0; !stopping && performance.now() - fault.upAt < a["drain-timeout-ms"] && i < 10_000; i++) {
        const b = await backlog();
        if (b && b.messages > fault.peak.messages) fault.peak = b;
        if (b?.messages === 0) {
          fault.drainedAt = performance.now();
          log(`[bench] outbox backlog drained ${((fault.drainedAt - fault.upAt) / 1000).toFixed(1)} s after Postgres came back`);
          break;
        }
        await sleep(250);
      }
    })();
    const inFault = () => fault.downAt !== undefined && fault.upAt === undefined;
    await Promise.all(
      fixtures.map(async (f, i) => {
        for (let k = 0; k < a.turns && !stopping; k++) {
          const t: Turn = { thread: i, index: k, sentAt: 0, duringFault: inFault() };
          turns.push(t);
          await turn(f.ws!, t, `load ${i} turn ${k}: hello`);
          t.duringFault ||= inFault();
          if (a["think-ms"] && k < a.turns - 1) await sleep(a["think-ms"]);
          // After a timeout or a closed socket a late reply would be taken for the next turn's.
          if (t.error === "timeout" || t.error?.startsWith("socket_closed")) break;
        }
      }),
    );
    const runEnd = performance.now();
    await faultTask;

    const done = turns.filter((t) => !t.error);
    const failed = turns.filter((t) => t.error);
    const notRun = a.threads * a.turns - turns.length;
    const seconds = (runEnd - runStart) / 1000;
    const overhead = done.map((t) => t.firstTextAt! - t.sentAt - a["first-token-ms"]);
    const kinds = new Map<string, number>();
    for (const t of failed) kinds.set(t.error!, (kinds.get(t.error!) ?? 0) + 1);
    log(`\n[bench] ${a.threads} threads x ${a.turns} turns, model first token ${a["first-token-ms"]} ms, chunks every ${a["chunk-ms"]} ms (${a.api}), ${a.url ? base : a.db}`);
    log(
      `  machine: ${cpus().length} cores, load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")} (1/5/15 min) at the end of the turns`,
    );
    log(`  turns: ${done.length} completed, ${failed.length} failed, ${notRun} not run, in ${seconds.toFixed(1)} s = ${(done.length / seconds).toFixed(1)} turns/s`);
    log(`  first text chunk, overhead over the model's delay: ${summary(overhead)}`);
    log(`  the same, without each thread's first turn (agent cold start): ${summary(done.filter((t) => t.index > 0).map((t) => t.firstTextAt! - t.sentAt - a["first-token-ms"]))}`);
    log(`  turn duration: ${summary(done.map((t) => t.doneAt! - t.sentAt))}`);
    if (kinds.size) log(`  errors: ${[...kinds].map(([k, n]) => `${k} x${n}`).join(", ")}`);
    if (fault.downAt !== undefined) {
      const during = turns.filter((t) => t.duringFault);
      log(
        `  outage: backlog peaked at ${fault.peak.messages} messages in ${fault.peak.threads} threads; ${fault.drainedAt ? `drained ${((fault.drainedAt - fault.upAt!) / 1000).toFixed(1)} s after Postgres came back` : "NOT drained (per /health)"}`,
      );
      log(
        `  turns overlapping the outage: ${during.length} (${during.filter((t) => !t.error).length} completed, ${during.filter((t) => t.error).length} failed), their duration ${summary(during.filter((t) => !t.error).map((t) => t.doneAt! - t.sentAt))}`,
      );
    }

    if (stopping) return 130;
    // Every completed turn is a user message and its reply; they reach Postgres once the outboxes drain.
    // A failed turn may have stored its user message (or a partial reply): the agents' transcripts say.
    const expected = 2 * done.length;
    const agents = await idsInAgents(base);
    const missing = (pgIds: Ids) => [...agents].flatMap(([t, ids]) => [...ids].filter((id) => !pgIds.get(t)?.has(id)).map((id) => `${t}/${id}`));
    const drainStart = performance.now();
    let pgIds: Ids = new Map();
    for (let i = 0; !stopping && performance.now() - drainStart < a["drain-timeout-ms"] && i < 10_000; i++) {
      pgIds = await idsInPostgres(base, db).catch(() => new Map());
      if (total(pgIds) === total(agents) && !missing(pgIds).length) break;
      await sleep(250);
    }
    const drainedAt = performance.now();
    const rows = total(pgIds);
    const lost = missing(pgIds);
    const from = Math.max(runEnd, fault.upAt ?? 0);
    const ok = !lost.length && rows === total(agents) && (failed.length ? rows >= expected : rows === expected);
    log(
      `  Postgres rows ${rows}, messages of completed turns ${expected}, in the agents' transcripts ${total(agents)}: ${ok ? "ok" : "MISMATCH"}${lost.length ? `, ${lost.length} missing from Postgres (e.g. ${lost.slice(0, 3).join(", ")})` : ""}; settled ${((drainedAt - from) / 1000).toFixed(1)} s after the last turn${fault.upAt ? " or Postgres coming back" : ""}`,
    );
    if (!ok)
      log(
        `  /health: ${JSON.stringify(
          await api(base, "GET", "/health", a["admin-token"]).then(
            (r) => r.json,
            () => null,
          ),
        )}`,
      );
    if (stack) {
      const devLog = stack.log();
      const lines = devLog.split("\n");
      const other = lines.filter((l) => /"level":"error"|✘|Uncaught|Error:/.test(l) && !l.includes("outbox_flush_failed"));
      log(
        `  server log: ${lines.filter((l) => l.includes("outbox_flush_failed")).length} outbox_flush_failed, ${other.length} other error lines${other.length ? `, e.g.\n    ${other.slice(0, 5).join("\n    ")}` : ""}`,
      );
    }
    return ok && !failed.length && !notRun ? 0 : 1;
  } finally {
    for (const f of fixtures) f.ws?.close(1000, "bench done");
    const deleted = { ok: 0, failed: 0 };
    await pool(fixtures, 10, async (f) => {
      const r = await api(base, "DELETE", `/api/v1/users/${f.userId}`, a["admin-token"]).catch(() => ({ status: 0 }));
      r.status === 204 || r.status === 404 ? deleted.ok++ : deleted.failed++;
    }).catch(() => {});
    log(`[bench] cleanup: ${deleted.ok} users deleted${deleted.failed ? `, ${deleted.failed} NOT deleted` : ""}`);
    await db?.end().catch(() => {});
  }
}

const shutdown = async (code: number) => {
  await stack?.stop();
  process.exit(code);
};
process.on("SIGINT", () => {
  // The run loop notices, cleans up its users and returns; a second Ctrl-C stops at once.
  if (stopping) return void shutdown(130);
  stopping = true;
  for (const f of fixtures) f.ws?.close(1000, "bench stopped");
  stack?.proxy.setDown(false);
  log("\n[bench] stopping (Ctrl-C again to stop now)");
});
process.on("SIGTERM", () => void shutdown(143));
main().then(
  (code) => shutdown(stopping ? 130 : code),
  async (err) => {
    console.error(`[bench] ${err instanceof Error ? err.message : String(err)}`);
    if (stack) console.error(`[bench] server log, last lines:\n${stack.log().split("\n").slice(-40).join("\n")}`);
    await shutdown(1);
  },
);
