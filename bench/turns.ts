// npm run bench:turns -- [--sizes 20,100] [--turns 3] [--rounds 2] [--first-token-ms 200 --chunk-ms 10]
//   [--api chat|responses] [--fresh 10] [--statements N] [--json FILE]
// Threadline's turn path against a bare AIChatAgent (bench/bare), alternately in one run on one
// machine: for each size, baseline and Threadline take turns (B, T, B, T, ...), each run on threads
// of its own, N threads concurrently, their turns sequential. Every turn calls hybrid_search once
// and then answers (the same fake model, bench/fake-model.ts). The ratio to the interleaved
// baseline is the figure that counts: the machines are shared and noisy.
import { execFileSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import pg from "pg";
import { z } from "zod";
import { DEMO_DOCUMENTS } from "../scripts/lib/demo.ts";
import { startFakeModel, type FakeModel } from "./fake-model.ts";
import { cliArgs } from "./cli.ts";
import { type Profiled, selfTimes, startProfile } from "./cpu-profile.ts";
import { startStack, type Stack } from "./load-stack.ts";
import { connectAgent, sendTurn, type Marks } from "./ws-client.ts";

const int = (min: number) => z.coerce.number().int().min(min);
const shape = {
  sizes: z
    .string()
    .regex(/^\d+(,\d+)*$/, "comma-separated thread counts")
    .default("20,100"),
  turns: int(1).max(100).default(3),
  /** A pause after each reply before the thread's next turn (a person reading it); 0: turns back to back. */
  "think-ms": int(0).max(60_000).default(0),
  rounds: int(1).max(20).default(2),
  "first-token-ms": int(0).max(60_000).default(200),
  "chunk-ms": int(0).max(10_000).default(10),
  api: z.enum(["chat", "responses"]).default("chat"),
  fresh: int(0).max(200).default(10),
  warmup: int(0).max(100).default(5),
  "poll-ms": int(1).max(1000).default(50),
  "max-connections": int(10).max(10_000).default(400),
  "turn-timeout-ms": int(1_000).default(60_000),
  "lag-timeout-ms": int(1_000).default(30_000),
  "setup-concurrency": int(1).max(200).default(20),
  "admin-token": z.string().default("dev-admin-token"),
  /** Prints each run's top Postgres statements (pg_stat_statements): where its Postgres time goes. */
  statements: int(0).max(100).default(0),
  json: z.string().optional(),
  /** A CPU profile of each run's server (workerd, over the run's turns) into this folder, and its top modules and functions by self time. */
  profile: z.string().optional(),
};
const Args = z
  .object(shape)
  .transform((a) => ({ ...a, sizes: a.sizes.split(",").map(Number) }))
  .refine((a) => a.sizes.every((n) => n >= 1 && n <= 1000), "sizes: 1 to 1000 threads");
const a = cliArgs(Object.keys(shape), Args);

const log = (s: string) => console.log(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
let stopping = false;
let stack: Stack | undefined;
let model: FakeModel | undefined;
let db: pg.Client | undefined;
const sockets = new Set<WebSocket>();
const bareThreads: string[] = [];
// A subdomain of the test-data domain: `npm run db:cleanup-test-data` finds users a killed run left behind.
const EMAIL_DOMAIN = "turns.bench.tests.threadline.invalid";

type System = "baseline" | "threadline";
type User = { id: string; apiKey: string };
type Thread = { id: string; user: User };
/** `modelAt`: when the fake model received the turn's two requests (the tool call, then the answer). */
type Turn = Marks & { thread: number; index: number; text: string; sentAt: number; userId: string; modelAt?: number[] };
type Fresh = { kind: "warm" | "new"; openedAt: number; firstChunkAt?: number; doneAt?: number; error?: string };

/** Runs `fn` over `items`, at most `n` at a time; after Ctrl-C only when `always` (cleanup). */
async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<void>, always = false) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length && (always || !stopping)) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function api<T>(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${stack!.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as T };
}

const socketUrl = (system: System, t: Thread) =>
  system === "baseline"
    ? `${stack!.bareUrl!.replace(/^http/, "ws")}/agents/bare-agent/${t.id}`
    : `${stack!.url.replace(/^http/, "ws")}/agents/thread-agent/${t.id}?token=${encodeURIComponent(t.user.apiKey)}`;

function open(url: string): WebSocket {
  const ws = new WebSocket(url);
  sockets.add(ws);
  ws.addEventListener("close", () => sockets.delete(ws));
  return ws;
}

const connect = (url: string) => connectAgent(open(url));

/** One turn; `owner` scopes the baseline's search (Threadline knows its thread's owner and ignores it): the same frame to both. */
const turn = (ws: WebSocket, text: string, owner: string, m: Marks, on: { sent?: (userId: string, at: number) => void; assistant?: (id: string) => void } = {}) =>
  sendTurn(ws, text, m, { timeoutMs: a["turn-timeout-ms"], extra: { owner }, ...on });

/**
 * When each awaited message row first shows in Postgres (queried directly, not through the proxy):
 * one query for everything pending every --poll-ms, so the figure's resolution is about that.
 * A row's time is when the query that found it was sent.
 */
class RowWatch {
  seen = new Map<string, number | undefined>();
  /** Its own queries, to take out of Postgres's transaction count. */
  queries = 0;
  #pending = new Map<string, string>();
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  #db: pg.Client;
  constructor(db: pg.Client) {
    this.#db = db;
  }
  watch(threadId: string, messageId: string) {
    if (this.seen.has(messageId)) return;
    this.seen.set(messageId, undefined);
    this.#pending.set(messageId, threadId);
  }
  start() {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        const t0 = now();
        if (this.#pending.size) {
          const ids = [...this.#pending.keys()];
          this.queries++;
          const r = await this.#db
            .query<{ id: string }>("select id from messages where (thread_id, id) in (select * from unnest($1::uuid[], $2::text[]))", [ids.map((i) => this.#pending.get(i)!), ids])
            .catch(() => ({ rows: [] }));
          for (const { id } of r.rows) {
            this.seen.set(id, t0);
            this.#pending.delete(id);
          }
        }
        await sleep(Math.max(0, a["poll-ms"] - (now() - t0)));
      }
    })();
  }
  async stop() {
    this.#running = false;
    await this.#loop;
  }
}

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString());
type Cpu = { workerd: number; wrangler: number; postgres: number; bench: number };

/**
 * CPU time so far (ms) of one system's servers (its process group: workerd, and wrangler's Node processes,
 * which carry local Hyperdrive's connections and the log output), of Postgres
 * (the postmaster and its backends) and of this process (the clients and the fake model). A process
 * that exited counts in its parent's cutime/cstime, so short-lived backends are not lost.
 */
function cpu(system: System): Cpu {
  const { server, bare, postgres } = stack!.pids;
  const group = system === "baseline" ? bare : server;
  const out = { workerd: 0, wrangler: 0, postgres: 0 };
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
    if (Number(f[2]) === group) out[stat.includes("(workerd)") ? "workerd" : "wrangler"] += ms;
    else if (postgres && (Number(d) === postgres || Number(f[1]) === postgres)) out.postgres += ms;
  }
  const own = process.cpuUsage();
  return { ...out, bench: (own.user + own.system) / 1000 };
}

/**
 * Backends report their counts at session end or about once a second: read after a pause, with this
 * session's own counts flushed first; its own transactions (the row watch's polls, these two) are taken out.
 */
async function pgStats(watch: RowWatch) {
  await sleep(1100);
  await db!.query("select pg_stat_force_next_flush()");
  const r = await db!.query<{ sessions: string; xact: string; rows: Record<string, string> }>(
    "select sessions, xact_commit as xact, (select json_object_agg(relname, n_tup_ins + n_tup_upd + n_tup_del) from pg_stat_user_tables) as rows from pg_stat_database where datname = current_database()",
  );
  watch.queries += 2;
  const row = r.rows[0]!;
  return { sessions: Number(row.sessions), transactions: Number(row.xact) - (watch.queries - 1), rows: row.rows ?? {} };
}

/** The run's top statements by total time, per turn: calls, ms executing, rows (the row watch's own polls included). */
async function printStatements(system: System, turns: number) {
  const r = await db!.query<{ calls: string; ms: number; rows: string; query: string }>(
    "select calls, total_exec_time as ms, rows, query from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database()) order by total_exec_time desc limit $1",
    [a.statements],
  );
  log(`[bench] ${system}: top statements per turn (calls / exec ms / rows):`);
  for (const s of r.rows)
    log(`  ${(Number(s.calls) / turns).toFixed(2)} / ${(s.ms / turns).toFixed(2)} / ${(Number(s.rows) / turns).toFixed(1)}  ${s.query.replace(/\s+/g, " ").slice(0, 160)}`);
}

const rowDeltas = (before: Record<string, string>, after: Record<string, string>) =>
  Object.fromEntries(Object.entries(after).flatMap(([t, n]) => (Number(n) - Number(before[t] ?? 0) ? [[t, Number(n) - Number(before[t] ?? 0)]] : [])));

const text = (tag: string) => `turn ${tag}: search the handbook for the espresso dose of a double shot`;

type Run = {
  system: System;
  size: number;
  round: number;
  seconds: number;
  /** Threadline: ms from the last turn's end to the run's messages all indexed (0: the baseline indexes nothing). */
  indexedAfter: number;
  loadavg: number[];
  /** CPU ms spent during the turns (not the connects or the fresh sockets), per component. */
  cpu: Cpu;
  /** The same, until the run's messages were all indexed too. */
  cpuIndexing: Cpu;
  /** Postgres sessions (connections) opened and transactions committed by the turns, from pg_stat_database. */
  pg: { sessions: number; transactions: number; rowsWritten: Record<string, number> };
  turns: (Turn & { rowsAt?: number })[];
  fresh: Fresh[];
};

/** Saves a run's CPU profile (and the bundle it ran) under --profile, and prints where its time went, per turn. */
function printProfile(system: System, round: number, size: number, turns: number, p: Profiled) {
  mkdirSync(a.profile!, { recursive: true });
  const file = `${a.profile}/${system}-${size}-${round}.cpuprofile`;
  writeFileSync(file, JSON.stringify(p.profile));
  if (p.bundle) writeFileSync(`${file}.bundle.js`, p.bundle);
  const s = selfTimes(p);
  const row = ([k, v]: [string, number]) => `  ${(v / turns).toFixed(1).padStart(6)} ms/turn  ${k}`;
  log(
    `[bench] profile ${file}: ${(s.totalMs / turns).toFixed(1)} ms sampled per turn; by module:\n${s.byModule.slice(0, 25).map(row).join("\n")}\nby function:\n${s.byFunction.slice(0, 30).map(row).join("\n")}\nunder the project's functions (callees included):\n${s.ours.slice(0, 40).map(row).join("\n")}`,
  );
}

/** One run: `threads` connected, their turns, the rows they wrote, then fresh sockets (on a thread of the run, then on a new thread). */
async function run(system: System, round: number, threads: Thread[], spares: Thread[], watch: RowWatch): Promise<Run> {
  const socks = new Array<WebSocket>(threads.length);
  await pool(threads, a["setup-concurrency"], async (t, i) => void (socks[i] = await connect(socketUrl(system, t))));
  await sleep(1000);
  const turns: Turn[] = [];
  const tag = `${system[0]}${round}-${randomUUID().slice(0, 6)}`;
  const pg0 = await pgStats(watch);
  if (a.statements) await db!.query("create extension if not exists pg_stat_statements; select pg_stat_statements_reset()");
  const stopProfile = a.profile ? await startProfile(system === "baseline" ? stack!.inspectors.bare! : stack!.inspectors.server) : undefined;
  const cpu0 = cpu(system);
  const start = now();
  await Promise.all(
    threads.map(async (t, i) => {
      for (let k = 0; k < a.turns && !stopping; k++) {
        const turnRec: Turn = { thread: i, index: k, text: text(`${tag}-${i}-${k}`), sentAt: 0, userId: "" };
        turns.push(turnRec);
        await turn(socks[i]!, turnRec.text, t.user.id, turnRec, {
          sent: (userId, at) => {
            turnRec.userId = userId;
            turnRec.sentAt = at;
            watch.watch(t.id, userId);
          },
          assistant: (id) => watch.watch(t.id, id),
        });
        // After a timeout or a closed socket a late reply would be taken for the next turn's.
        if (turnRec.error === "timeout" || turnRec.error?.startsWith("socket_closed")) break;
        if (a["think-ms"] && k < a.turns - 1) await sleep(a["think-ms"]);
      }
    }),
  );
  const seconds = (now() - start) / 1000;
  const cpu1 = cpu(system);
  if (stopProfile) printProfile(system, round, threads.length, turns.length, await stopProfile());
  const since0 = (c: Cpu) => Object.fromEntries(Object.keys(cpu0).map((k) => [k, c[k as keyof Cpu] - cpu0[k as keyof Cpu]])) as Cpu;
  const used = since0(cpu1);
  const load = loadavg();
  const lagDeadline = now() + a["lag-timeout-ms"];
  const done = turns.filter((t) => !t.error);
  const rowsIn = () => done.every((t) => watch.seen.get(t.userId) !== undefined && watch.seen.get(t.assistantId ?? "") !== undefined);
  while (!stopping && !rowsIn() && now() < lagDeadline) await sleep(a["poll-ms"]);
  // Threadline indexes a thread's messages once the thread is quiet (src/agent/message-index.ts): the
  // run waits for that as well, so that work lands in this run's CPU and Postgres figures (the
  // "with indexing" ones), not in the next run's time, and says when it ended after the last turn.
  const ids = threads.map((t) => t.id);
  const queued = async () => (await db!.query<{ n: number }>("select count(*)::int as n from message_index_queue where thread_id = any($1::uuid[])", [ids])).rows[0]!.n;
  while (system === "threadline" && !stopping && (await queued()) > 0 && now() < lagDeadline) await sleep(a["poll-ms"]);
  const indexedAfter = system === "threadline" ? now() - start - seconds * 1000 : 0;
  const usedIndexing = since0(cpu(system));
  // Threadline's user authorities hold the spend ledger for a minute before they write it: written now
  // (the usage route has them write what they hold), inside this run's Postgres figures, not in the next run's time.
  if (system === "threadline") await pool([...new Set(threads.map((t) => t.user))], a["setup-concurrency"], (u) => api("GET", "/api/v1/users/me/usage", u.apiKey).then(() => {}));
  const pg1 = await pgStats(watch);
  if (a.statements) await printStatements(system, turns.length);
  const modelAt = new Map<string, number[]>();
  for (const r of model!.requests) if (r.userText.startsWith(`turn ${tag}-`)) modelAt.set(r.userText, [...(modelAt.get(r.userText) ?? []), r.at - performance.timeOrigin]);
  const withRows = turns.map((t) => {
    const u = watch.seen.get(t.userId);
    const r = t.assistantId ? watch.seen.get(t.assistantId) : undefined;
    return { ...t, modelAt: modelAt.get(t.text), rowsAt: u !== undefined && r !== undefined ? Math.max(u, r) : undefined };
  });
  const fresh: Fresh[] = [];
  for (const [kind, list] of [
    ["warm", threads],
    ["new", spares],
  ] as const) {
    for (let j = 0; j < a.fresh && j < list.length && !stopping; j++) {
      const t = list[j]!;
      const f: Fresh = { kind, openedAt: now() };
      const ws = open(socketUrl(system, t));
      const m: Marks = {};
      await turn(ws, text(`${tag}-fresh-${kind}-${j}`), t.user.id, m);
      Object.assign(f, { firstChunkAt: m.firstChunkAt, doneAt: m.doneAt, error: m.error });
      fresh.push(f);
      ws.close(1000, "bench done");
    }
  }
  for (const s of socks) s?.close(1000, "bench done");
  return {
    system,
    size: threads.length,
    round,
    seconds,
    indexedAfter,
    loadavg: load,
    cpu: used,
    cpuIndexing: usedIndexing,
    pg: { sessions: pg1.sessions - pg0.sessions, transactions: pg1.transactions - pg0.transactions, rowsWritten: rowDeltas(pg0.rows, pg1.rows) },
    turns: withRows,
    fresh,
  };
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)}` : "n/a");

function summarize(runs: Run[]) {
  const turns = runs.flatMap((r) => r.turns);
  const done = turns.filter((t) => !t.error);
  const errors = new Map<string, number>();
  for (const t of turns) if (t.error) errors.set(t.error, (errors.get(t.error) ?? 0) + 1);
  const first = done.map((t) => t.firstChunkAt! - t.sentAt);
  // A thread's first turn is sent as its socket opens, all threads at once: a burst onto Durable Objects not yet awake.
  const firstOf = (later: boolean) => done.filter((t) => t.index > 0 === later).map((t) => t.firstChunkAt! - t.sentAt);
  const duration = done.map((t) => t.doneAt! - t.sentAt);
  const firstText = done.map((t) => t.firstTextAt! - t.sentAt);
  const lag = done.flatMap((t) => (t.rowsAt === undefined ? [] : [t.rowsAt - t.doneAt!]));
  const split = done.filter((t) => t.modelAt?.length === 2);
  const perTurn = (cpuOf: (r: Run) => Cpu) =>
    Object.fromEntries((["workerd", "wrangler", "postgres", "bench"] as const).map((k) => [k, runs.reduce((s, r) => s + cpuOf(r)[k], 0) / Math.max(1, done.length)])) as Cpu;
  const phase = (f: (t: Turn, m: number[]) => number) => ({
    p50: pct(
      split.map((t) => f(t, t.modelAt!)),
      50,
    ),
    p95: pct(
      split.map((t) => f(t, t.modelAt!)),
      95,
    ),
  });
  const fresh = (kind: Fresh["kind"]) => runs.flatMap((r) => r.fresh.filter((f) => f.kind === kind && !f.error).map((f) => f.firstChunkAt! - f.openedAt));
  const [warm, cold] = [fresh("warm"), fresh("new")];
  return {
    runs: runs.length,
    turns: turns.length,
    completed: done.length,
    // The fake's reply quotes a digest of the search result: one distinct reply says both systems found the same passages.
    replies: [...new Set(done.map((t) => t.reply))],
    searchFailed: done.filter((t) => !t.reply?.startsWith("Tool result: ok,")).length,
    errors: Object.fromEntries(errors),
    freshErrors: runs.flatMap((r) => r.fresh.filter((f) => f.error).map((f) => f.error!)),
    firstChunk: { p50: pct(first, 50), p95: pct(first, 95), firstTurnP50: pct(firstOf(false), 50), laterTurnsP50: pct(firstOf(true), 50) },
    firstText: { p50: pct(firstText, 50), p95: pct(firstText, 95) },
    turn: { p50: pct(duration, 50), p95: pct(duration, 95) },
    // Where a turn's time goes, as the model server saw it: before its first request, the tool step
    // (the model's first token, the tool call, the search, the next request), and the answer to the done frame.
    phases: { beforeModel: phase((t, m) => m[0]! - t.sentAt), toolStep: phase((_t, m) => m[1]! - m[0]!), answer: phase((t, m) => t.doneAt! - m[1]!), n: split.length },
    turnsPerSecond: done.length / runs.reduce((s, r) => s + r.seconds, 0),
    // The same, over the turns and the message indexing after them, and that indexing's time after the last turn.
    turnsPerSecondIndexed: done.length / runs.reduce((s, r) => s + r.seconds + r.indexedAfter / 1000, 0),
    indexedAfterMs: runs.map((r) => Math.round(r.indexedAfter)),
    pgPerTurn: {
      sessions: runs.reduce((s, r) => s + r.pg.sessions, 0) / Math.max(1, done.length),
      transactions: runs.reduce((s, r) => s + r.pg.transactions, 0) / Math.max(1, done.length),
      // Rows inserted, updated or deleted per turn, by table (statistics, so approximate).
      rowsWritten: Object.fromEntries(
        [...new Set(runs.flatMap((r) => Object.keys(r.pg.rowsWritten)))].map((t) => [
          t,
          +(runs.reduce((s, r) => s + (r.pg.rowsWritten[t] ?? 0), 0) / Math.max(1, done.length)).toFixed(2),
        ]),
      ),
    },
    cpuPerTurn: perTurn((r) => r.cpu),
    cpuPerTurnIndexed: perTurn((r) => r.cpuIndexing),
    perRound: runs.map((r) => ({
      round: r.round,
      turnsPerSecond: r.turns.filter((t) => !t.error).length / r.seconds,
      firstChunkP50: pct(
        r.turns.filter((t) => !t.error).map((t) => t.firstChunkAt! - t.sentAt),
        50,
      ),
      loadavg1: r.loadavg[0],
    })),
    rowsAfterDone: { p50: pct(lag, 50), p99: pct(lag, 99), beforeDone: lag.filter((x) => x <= 0).length, measured: lag.length, missing: done.length - lag.length },
    freshWarm: { p50: pct(warm, 50), p95: pct(warm, 95), n: warm.length },
    freshNew: { p50: pct(cold, 50), p95: pct(cold, 95), n: cold.length },
  };
}

const git = (...args: string[]) =>
  execFileSync("git", args, { cwd: new URL("..", import.meta.url).pathname, maxBuffer: 64 << 20 })
    .toString()
    .trim();

/** What the server runs: a copy of the working tree taken at start, so the commit alone does not say; the diff's hash does. */
function treeState() {
  const paths = ["src", "bench/bare", "migrations", "wrangler.toml"];
  const changed = git("status", "--porcelain", "--", ...paths)
    .split("\n")
    .filter(Boolean);
  const diff = createHash("sha256")
    .update(git("diff", "HEAD", "--", ...paths))
    .update(changed.join("\n"))
    .digest("hex")
    .slice(0, 12);
  return { commit: git("rev-parse", "--short", "HEAD"), changed: changed.length, diff };
}

async function main(): Promise<number> {
  const tree = treeState();
  model = await startFakeModel({ firstTokenDelayMs: a["first-token-ms"], chunkDelayMs: a["chunk-ms"] });
  stack = await startStack(
    { db: "postgres", api: a.api, firstTokenMs: a["first-token-ms"], chunkMs: a["chunk-ms"], maxConnections: a["max-connections"], modelUrl: model.url, bare: true },
    log,
  );
  db = new pg.Client({ connectionString: stack.databaseUrl });
  db.on("error", () => {});
  await db.connect();
  const users: User[] = [];
  const threads: Thread[] = [];
  const docs: string[] = [];
  try {
    const runId = randomUUID().slice(0, 8);
    // The same corpus for both: a few shared documents every user's search sees.
    const d = await api<{ documents: { id: string }[] }>("POST", "/api/v1/documents", a["admin-token"], { documents: DEMO_DOCUMENTS });
    if (d.status !== 201) throw new Error(`ingest documents: ${d.status} ${JSON.stringify(d.json)}`);
    docs.push(...d.json.documents.map((x) => x.id));
    const maxSize = Math.max(...a.sizes, a.warmup);
    await pool(
      Array.from({ length: maxSize }, (_, i) => i),
      a["setup-concurrency"],
      async (i) => {
        const u = await api<{ user: { id: string }; apiKey: string }>("POST", "/api/v1/users", a["admin-token"], { email: `turns-${runId}-${i}@${EMAIL_DOMAIN}`, name: "bench" });
        if (u.status !== 201) throw new Error(`create user: ${u.status} ${JSON.stringify(u.json)}`);
        users[i] = { id: u.json.user.id, apiKey: u.json.apiKey };
      },
    );
    // Every run gets threads of its own (and spares for the fresh-socket samples on a new thread), so every run starts alike.
    const newThreads = async (n: number, system: System): Promise<Thread[]> => {
      const out = new Array<Thread>(n);
      await pool(
        Array.from({ length: n }, (_, i) => i),
        a["setup-concurrency"],
        async (i) => {
          const user = users[i % users.length]!;
          const t = await api<{ thread: { id: string } }>("POST", "/api/v1/threads", user.apiKey, { title: `turns ${system}` });
          if (t.status !== 201) throw new Error(`create thread: ${t.status} ${JSON.stringify(t.json)}`);
          threads.push((out[i] = { id: t.json.thread.id, user }));
          if (system === "baseline") bareThreads.push(t.json.thread.id);
        },
      );
      return out;
    };
    const plan: { system: System; size: number; round: number }[] = [];
    if (a.warmup) for (const system of ["baseline", "threadline"] as const) plan.push({ system, size: a.warmup, round: 0 });
    for (const size of a.sizes) for (let r = 1; r <= a.rounds; r++) for (const system of ["baseline", "threadline"] as const) plan.push({ system, size, round: r });
    const setup = now();
    const prepared = [];
    for (const p of plan) prepared.push({ ...p, threads: await newThreads(p.size, p.system), spares: await newThreads(Math.min(a.fresh, p.size), p.system) });
    if (stopping) return 130;
    log(
      `[bench] ${users.length} users, ${threads.length} threads ready in ${((now() - setup) / 1000).toFixed(1)} s; ${plan.length} runs: ${plan.map((p) => `${p.system === "baseline" ? "B" : "T"}${p.size}${p.round ? "" : "(warm-up)"}`).join(" ")}`,
    );

    const watch = new RowWatch(db);
    watch.start();
    const runs: Run[] = [];
    for (const p of prepared) {
      if (stopping) break;
      const r = await run(p.system, p.round, p.threads, p.spares, watch);
      const s = summarize([r]);
      log(
        `[bench] ${p.round ? `round ${p.round}` : "warm-up"} ${p.system} x${p.size}: ${s.completed}/${s.turns} turns in ${r.seconds.toFixed(1)} s = ${s.turnsPerSecond.toFixed(1)}/s, first chunk p50 ${ms(s.firstChunk.p50)} ms (first turn ${ms(s.firstChunk.firstTurnP50)}, later ${ms(s.firstChunk.laterTurnsP50)}), turn p50 ${ms(s.turn.p50)} ms, rows after done p50 ${ms(s.rowsAfterDone.p50)} ms, CPU per turn ${ms(s.cpuPerTurn.workerd)} ms workerd + ${ms(s.cpuPerTurn.wrangler)} wrangler + ${ms(s.cpuPerTurn.postgres)} Postgres, ${s.pgPerTurn.sessions.toFixed(1)} connections and ${s.pgPerTurn.transactions.toFixed(1)} transactions (rows written per turn ${JSON.stringify(s.pgPerTurn.rowsWritten)}), reply ${JSON.stringify(s.replies.length === 1 ? s.replies[0] : s.replies)}${Object.keys(s.errors).length ? `, errors ${JSON.stringify(s.errors)}` : ""}${s.freshErrors.length ? `, fresh errors ${JSON.stringify(s.freshErrors)}` : ""}, load ${r.loadavg[0]!.toFixed(1)}`,
      );
      if (p.round) runs.push(r);
      await sleep(1000);
    }
    await watch.stop();
    if (stopping) return 130;

    const results = a.sizes.map((size) => {
      const of = (system: System) => summarize(runs.filter((r) => r.size === size && r.system === system));
      const [b, t] = [of("baseline"), of("threadline")];
      const pairs = b.perRound.map((br, i) => ({ firstChunkP50: t.perRound[i]!.firstChunkP50 / br.firstChunkP50, throughput: t.perRound[i]!.turnsPerSecond / br.turnsPerSecond }));
      return {
        size,
        baseline: b,
        threadline: t,
        ratio: {
          firstChunkP50: t.firstChunk.p50 / b.firstChunk.p50,
          laterTurnsFirstChunkP50: t.firstChunk.laterTurnsP50 / b.firstChunk.laterTurnsP50,
          throughput: t.turnsPerSecond / b.turnsPerSecond,
          perRound: pairs,
        },
      };
    });
    const meta = {
      at: new Date().toISOString(),
      tree,
      machine: { cores: cpus().length, loadavg: loadavg() },
      model: { firstTokenMs: a["first-token-ms"], chunkMs: a["chunk-ms"], api: a.api },
      turns: a.turns,
      rounds: a.rounds,
      fresh: a.fresh,
      pollMs: a["poll-ms"],
    };
    const f = (x: { p50: number; p95?: number; p99?: number }) => `${ms(x.p50)} / ${ms(x.p95 ?? x.p99!)}`;
    log(
      `\n### bench:turns, ${meta.at}, tree ${tree.commit}${tree.changed ? ` + ${tree.changed} changed files (diff ${tree.diff})` : ""}: ${meta.machine.cores} cores, load average ${meta.machine.loadavg.map((x) => x.toFixed(1)).join(" ")}; model first token ${a["first-token-ms"]} ms, chunk ${a["chunk-ms"]} ms (${a.api}); ${a.turns} turns per thread${a["think-ms"] ? ` ${a["think-ms"]} ms apart` : ""}, ${a.rounds} rounds per system, alternating\n`,
    );
    log(
      "| threads | system | first chunk p50 / p95 ms | first chunk p50, a thread's first turn / later turns ms | first text p50 ms | turn p50 / p95 ms | turns/s | errors | fresh socket → first chunk p50 / p95 ms (warm thread; new thread) | rows in Postgres after done p50 / p99 ms |",
    );
    log("|---|---|---|---|---|---|---|---|---|---|");
    for (const r of results) {
      for (const system of ["baseline", "threadline"] as const) {
        const s = r[system];
        const errs = s.turns - s.completed + s.freshErrors.length;
        log(
          `| ${r.size} | ${system} | ${f(s.firstChunk)} | ${ms(s.firstChunk.firstTurnP50)} / ${ms(s.firstChunk.laterTurnsP50)} | ${ms(s.firstText.p50)} | ${f(s.turn)} | ${s.turnsPerSecond.toFixed(1)} | ${errs}${errs ? ` ${JSON.stringify(s.errors)}` : ""}${s.searchFailed ? `, ${s.searchFailed} turns whose search failed` : ""} | ${f(s.freshWarm)}; ${f(s.freshNew)} | ${f(s.rowsAfterDone)}${s.rowsAfterDone.missing ? ` (${s.rowsAfterDone.missing} turns' rows not seen)` : ""} |`,
        );
      }
    }
    log(
      "\n| threads | system | frame sent → first model request p50 / p95 ms | tool step (model call, search, next request) p50 / p95 ms | answer request → done frame p50 / p95 ms | CPU ms per turn: workerd / wrangler / Postgres / bench process | Postgres connections / transactions per turn |",
    );
    log("|---|---|---|---|---|---|---|");
    for (const r of results)
      for (const system of ["baseline", "threadline"] as const) {
        const { phases: p, cpuPerTurn: c } = r[system];
        log(
          `| ${r.size} | ${system} | ${f(p.beforeModel)} | ${f(p.toolStep)} | ${f(p.answer)} | ${ms(c.workerd)} / ${ms(c.wrangler)} / ${ms(c.postgres)} / ${ms(c.bench)} | ${r[system].pgPerTurn.sessions.toFixed(1)} / ${r[system].pgPerTurn.transactions.toFixed(1)} |`,
        );
      }
    log("");
    for (const r of results) {
      const t = r.threadline;
      const c = t.cpuPerTurnIndexed;
      log(
        `- ${r.size} threads, Threadline with its message indexing (which waits for each thread to go quiet): indexed ${t.indexedAfterMs.join(", ")} ms after each run's last turn; ${t.turnsPerSecondIndexed.toFixed(1)} turns/s over the turns and that time (${(t.turnsPerSecondIndexed / r.baseline.turnsPerSecond).toFixed(2)}x the baseline's); CPU ms per turn ${ms(c.workerd)} / ${ms(c.wrangler)} / ${ms(c.postgres)} / ${ms(c.bench)}`,
      );
    }
    for (const r of results) {
      const ok = (x: boolean) => (x ? "met" : "NOT met");
      log(
        `- ${r.size} threads, Threadline / baseline: first-chunk p50 ${r.ratio.firstChunkP50.toFixed(2)}x (target <= 1.1x: ${ok(r.ratio.firstChunkP50 <= 1.1)}; a thread's later turns ${r.ratio.laterTurnsFirstChunkP50.toFixed(2)}x), throughput ${r.ratio.throughput.toFixed(2)}x (target >= 0.9x: ${ok(r.ratio.throughput >= 0.9)}); per round: ${r.ratio.perRound.map((p) => `${p.firstChunkP50.toFixed(2)}x / ${p.throughput.toFixed(2)}x`).join(", ")}`,
      );
    }
    for (const [name, text] of [
      ["server", stack.log()],
      ["baseline", stack.bareLog()],
    ] as const) {
      const bad = text.split("\n").filter((l) => /"level":"(error|warn)"|✘|Uncaught|Error:/.test(l));
      log(
        `[bench] ${name} log: ${bad.length} error/warning lines${
          bad.length
            ? `, e.g.\n    ${bad
                .slice(0, 5)
                .map((l) => l.slice(0, 300))
                .join("\n    ")}`
            : ""
        }`,
      );
    }
    const summary = { ...meta, results };
    if (a.json) {
      writeFileSync(a.json, JSON.stringify({ ...summary, runs }, null, 1));
      log(`\n[bench] raw numbers (every turn) written to ${a.json}`);
    }
    log(`\n${JSON.stringify(summary)}`);
    const failed = runs.some((r) => r.turns.some((t) => t.error) || r.fresh.some((x) => x.error));
    return failed ? 1 : 0;
  } finally {
    for (const s of sockets) s.close(1000, "bench done");
    // The baseline's threads first, straight in Postgres: deleting them through the API would wake a ThreadAgent for each.
    await db.query("delete from threads where id = any($1::uuid[])", [bareThreads]).catch(() => {});
    const deleted = { ok: 0, failed: 0 };
    await pool(
      users.filter(Boolean),
      10,
      async (u) => {
        const r = await api("DELETE", `/api/v1/users/${u.id}`, a["admin-token"]).catch(() => ({ status: 0 }));
        r.status === 204 || r.status === 404 ? deleted.ok++ : deleted.failed++;
      },
      true,
    ).catch(() => {});
    for (const id of docs) await api("DELETE", `/api/v1/documents/${id}`, a["admin-token"]).catch(() => {});
    log(`[bench] cleanup: ${deleted.ok} users (and their ${threads.length} threads) deleted${deleted.failed ? `, ${deleted.failed} NOT deleted` : ""}, ${docs.length} documents`);
    await db.end().catch(() => {});
  }
}

const shutdown = async (code: number) => {
  await stack?.stop();
  await model?.stop();
  process.exit(code);
};
process.on("SIGINT", () => {
  // The run loop notices, cleans up its users and returns; a second Ctrl-C stops at once.
  if (stopping) return void shutdown(130);
  stopping = true;
  for (const s of sockets) s.close(1000, "bench stopped");
  log("\n[bench] stopping (Ctrl-C again to stop now)");
});
process.on("SIGTERM", () => void shutdown(143));
main().then(
  (code) => shutdown(stopping ? 130 : code),
  async (err) => {
    // After Ctrl-C a failed connect or turn is ours: the sockets were closed on purpose.
    if (stopping) return shutdown(130);
    console.error(`[bench] ${err instanceof Error ? err.message : String(err)}`);
    if (stack)
      console.error(
        `[bench] server log, last lines:\n${stack.log().split("\n").slice(-30).join("\n")}\n[bench] baseline log, last lines:\n${stack.bareLog().split("\n").slice(-30).join("\n")}`,
      );
    await shutdown(1);
  },
);
