// node bench/message-search.ts \
//   --database URL [--conversations 300] [--users 20] [--grow 100000] [--latency-queries 300] [--reset] [--modes lexical,vector,hybrid]
// Search across conversations, measured: synthetic conversations with known answers (a fact stated once in one
// thread of a user who has several alike), written and indexed through the service's own code (the outbox's
// applyMessageOps, then indexThreadMessages), searched through searchCorpora (the code behind
// GET /api/v1/search?scope=messages). Quality on the base corpus and after growing it; latency at the grown size.
// Needs a PostgreSQL with pgvector of its own (its bench users are replaced).
import { parseArgs } from "node:util";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { applyMigrations } from "../scripts/lib/postgres.ts";
import { getConfig } from "../src/config.ts";
import type { Db } from "../src/db/client.ts";
import type { SearchMode } from "../src/db/documents.ts";
import { applyMessageOps, type MessageOp } from "../src/db/messages.ts";
import { createThread } from "../src/db/threads.ts";
import { createUser, deleteUsersInEmailDomain } from "../src/db/users.ts";
import { kvCacheVersions, memoryCache } from "../src/search/cache.ts";
import { embedderFor } from "../src/search/embeddings.ts";
import { indexThreadMessages } from "../src/search/message-index.ts";
import { searchCorpora, type SearchDeps } from "../src/search/search.ts";
import { rng } from "../test/support/random.ts";

const { values: args } = parseArgs({
  options: {
    database: { type: "string", default: process.env.BENCH_DATABASE_URL },
    conversations: { type: "string", default: "300" },
    users: { type: "string", default: "20" },
    grow: { type: "string", default: "0" },
    "latency-queries": { type: "string", default: "300" },
    modes: { type: "string", default: "lexical,vector,hybrid" },
    reset: { type: "boolean", default: false },
    concurrency: { type: "string", default: "4" },
    "vector-weight": { type: "string" },
    "skip-latency": { type: "boolean", default: false },
  },
});
if (!args.database) throw new Error("set BENCH_DATABASE_URL or --database to a PostgreSQL with pgvector (its bench users are replaced)");
const DOMAIN = "bench.threadline.invalid";
const MODES = args.modes.split(",") as SearchMode[];

const random = rng(17);
const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
const digits = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 10)).join("");

// A fact worth finding again, said once: its statement, the assistant's confirmation, the ways its owner later
// asks for it (one with the statement's words, one paraphrased), and small talk around it. Every user has
// several threads of one template with different names, so the name is what tells the answer apart.
type Template = {
  fact: (e: string, v: string) => string;
  confirm: (e: string, v: string) => string;
  queries: ((e: string) => string)[];
  value: () => string;
  chat: ((e: string) => string)[];
};
const T = (t: Template) => t;
const TEMPLATES: Template[] = [
  T({
    fact: (e, v) => `My locker code at the ${e} gym is ${v}.`,
    confirm: (e, v) => `Noted: ${v} for your locker at ${e}.`,
    queries: [(e) => `what is my locker code at the ${e} gym`, (e) => `combination for my ${e} locker`],
    value: () => digits(4),
    chat: [(e) => `The ${e} gym was crowded again.`, () => "Any tips for stretching after a run?", (e) => `Does ${e} open early on Sundays?`],
  }),
  T({
    fact: (e, v) => `The ferry to ${e} leaves at ${v} from pier two.`,
    confirm: (e, v) => `Got it, ${v} for the ${e} ferry.`,
    queries: [(e) => `when does the ferry to ${e} leave`, (e) => `departure time of the boat to ${e}`],
    value: () => `${6 + Math.floor(random() * 12)}:${pick(["05", "15", "30", "40", "50"])}`,
    chat: [(e) => `Is ${e} nice in the spring?`, () => "Should I bring a rain jacket?", (e) => `What is there to eat on ${e}?`],
  }),
  T({
    fact: (e, v) => `Our wifi password at the ${e} office is ${v}.`,
    confirm: (e, v) => `Saved the ${e} wifi password: ${v}.`,
    queries: [(e) => `wifi password for the ${e} office`, (e) => `how do I get online at ${e}`],
    value: () => `${pick(["blue", "tiger", "maple", "orbit"])}${digits(3)}`,
    chat: [(e) => `The ${e} office moved to the third floor.`, () => "How do I share my screen in a meeting?", () => "Remind me to book a room."],
  }),
  T({
    fact: (e, v) => `${e}'s birthday is on ${v}.`,
    confirm: (e, v) => `I'll remember ${e}'s birthday, ${v}.`,
    queries: [(e) => `when is ${e}'s birthday`, (e) => `what day was ${e} born`],
    value: () => `${pick(["March", "June", "October", "January"])} ${1 + Math.floor(random() * 28)}`,
    chat: [(e) => `What should I get ${e} as a present?`, () => "Is a book a good gift?", (e) => `${e} likes hiking and jazz.`],
  }),
  T({
    fact: (e, v) => `The ${e} project deadline moved to ${v}.`,
    confirm: (e, v) => `Okay, the ${e} deadline is now ${v}.`,
    queries: [(e) => `deadline for the ${e} project`, (e) => `when is ${e} due`],
    value: () => `${pick(["Friday", "Monday", "the 14th", "end of May"])}`,
    chat: [(e) => `Who is leading ${e}?`, () => "Can you draft a status update?", (e) => `The ${e} budget looks tight.`],
  }),
  T({
    fact: (e, v) => `I parked the car on level ${v} of the ${e} garage.`,
    confirm: (e, v) => `Level ${v}, ${e} garage.`,
    queries: [(e) => `which level did I park on at ${e}`, (e) => `where is my car in the ${e} parking`],
    value: () => `${1 + Math.floor(random() * 9)}${pick(["A", "B", "C"])}`,
    chat: [(e) => `How much does ${e} charge per hour?`, () => "I always forget where I park.", () => "Is there a car wash nearby?"],
  }),
  T({
    fact: (e, v) => `The dentist appointment with Dr. ${e} is at ${v}.`,
    confirm: (e, v) => `Dr. ${e} at ${v}, noted.`,
    queries: [(e) => `when is my appointment with Dr. ${e}`, (e) => `what time do I see the dentist ${e}`],
    value: () => `${pick(["9", "10", "2", "4"])}:${pick(["00", "30", "15"])} on ${pick(["Tuesday", "Thursday"])}`,
    chat: [() => "Should I floss more?", (e) => `Dr. ${e} is always late.`, () => "Do I need to fast before?"],
  }),
  T({
    fact: (e, v) => `The recipe for ${e} soup needs ${v} grams of lentils.`,
    confirm: (e, v) => `${v} g of lentils for the ${e} soup.`,
    queries: [(e) => `how many grams of lentils for ${e} soup`, (e) => `lentil amount in the ${e} recipe`],
    value: () => `${100 + Math.floor(random() * 400)}`,
    chat: [(e) => `Can I freeze ${e} soup?`, () => "What spices go with lentils?", () => "I need a shopping list."],
  }),
  T({
    fact: (e, v) => `The invoice from ${e} was ${v} euros.`,
    confirm: (e, v) => `${e}: ${v} euros.`,
    queries: [(e) => `how much was the ${e} invoice`, (e) => `what did ${e} bill us`],
    value: () => `${100 + Math.floor(random() * 9000)}`,
    chat: [(e) => `Did we pay ${e} last month?`, () => "Remind me about taxes.", (e) => `${e} sends invoices late.`],
  }),
  T({
    fact: (e, v) => `My flight to ${e} is ${v}.`,
    confirm: (e, v) => `Flight ${v} to ${e}, saved.`,
    queries: [(e) => `what is my flight number to ${e}`, (e) => `which plane do I take to ${e}`],
    value: () => `${pick(["TP", "LH", "AF", "BA"])}${digits(3)}`,
    chat: [(e) => `What is the weather in ${e} next week?`, () => "How early should I get to the airport?", (e) => `Where should I stay in ${e}?`],
  }),
  T({
    fact: (e, v) => `The ${e} router admin PIN is ${v}.`,
    confirm: (e, v) => `PIN ${v} for the ${e} router.`,
    queries: [(e) => `admin pin for the ${e} router`, (e) => `how do I log into the ${e} modem`],
    value: () => digits(6),
    chat: [() => "The internet keeps dropping.", (e) => `Should I replace the ${e} router?`, () => "How do I reset a router?"],
  }),
  T({
    fact: (e, v) => `${e} prefers to be called ${v}.`,
    confirm: (e, v) => `${e} goes by ${v}.`,
    queries: [(e) => `what does ${e} like to be called`, (e) => `nickname of ${e}`],
    value: () => pick(["Sam", "Alex", "Jo", "Max", "Kit"]),
    chat: [(e) => `${e} joined the team in April.`, () => "How do I welcome a new colleague?", (e) => `Is ${e} in my time zone?`],
  }),
];
const NAMES = [
  "Riverside",
  "Northgate",
  "Elm Park",
  "Harbor",
  "Kestrel",
  "Marlow",
  "Oakridge",
  "Sunfield",
  "Westbrook",
  "Ashby",
  "Brightwater",
  "Cedar Point",
  "Dunmore",
  "Fairhaven",
  "Glenwood",
  "Hollow Creek",
  "Ivy Lane",
  "Juniper",
  "Larkspur",
  "Mistral",
  "Novak",
  "Orla",
  "Pemberton",
  "Quill",
];
const SMALL_TALK = [
  "Thanks!",
  "Great, thank you.",
  "Can you explain that again?",
  "What's a good podcast for a commute?",
  "How do I make better coffee at home?",
  "I slept badly last night.",
  "Any book recommendations?",
  "Let's continue tomorrow.",
];

type Message = { id: string; role: "user" | "assistant"; text: string };
type Conversation = { ownerIndex: number; messages: Message[]; query?: { text: string; relevant: string[]; paraphrased: boolean } };

/** One conversation: small talk, the topic's chat, the fact and its confirmation somewhere inside, and the question to find it by. */
function conversation(ownerIndex: number, n: number, withFact: boolean): Conversation {
  const t = pick(TEMPLATES);
  const e = pick(NAMES);
  const messages: Message[] = [];
  const say = (role: Message["role"], text: string) => messages.push({ id: `c${n}-m${messages.length}`, role, text });
  const turns = 4 + Math.floor(random() * 6);
  const at = Math.floor(random() * turns);
  let query: Conversation["query"];
  for (let i = 0; i < turns; i++) {
    if (withFact && i === at) {
      const v = t.value();
      say("user", t.fact(e, v));
      say("assistant", t.confirm(e, v));
      const q = Math.floor(random() * t.queries.length);
      query = { text: t.queries[q]!(e), relevant: messages.slice(-2).map((m) => m.id), paraphrased: q > 0 };
    } else {
      say("user", random() < 0.6 ? pick(t.chat)(e) : pick(SMALL_TALK));
      say("assistant", `Sure. ${pick(["Here is what I know.", "Good question.", "Let me think.", "That depends."])} ${pick(t.chat)(e)}`);
    }
  }
  return { ownerIndex, messages, query };
}

const pool = new pg.Pool({ connectionString: args.database, max: Number(args.concurrency) + 1 });
pool.on("error", () => {});
await applyMigrations(args.database);
const db = drizzle(pool) as unknown as Db;
const config = getConfig(process.env as unknown as Env);
const embedder = embedderFor(config);
if (args["vector-weight"]) embedder.fusionWeight = Number(args["vector-weight"]);
const deps: SearchDeps = { db: (fn) => fn(db), embedder, config };
const count = async (sql: string) => Number((await pool.query(sql)).rows[0].n);

/** Writes conversations as the outbox would (one transaction per thread) and indexes them; answers messages per second. */
async function write(convs: Conversation[], owners: string[]): Promise<number> {
  const started = performance.now();
  let next = 0;
  let messages = 0;
  await Promise.all(
    Array.from({ length: Number(args.concurrency) }, async () => {
      for (let i = next++; i < convs.length; i = next++) {
        const c = convs[i]!;
        const thread = await createThread(db, { userId: owners[c.ownerIndex]!, title: null });
        const ops: MessageOp[] = c.messages.map((m) => ({ op: "upsert", message: { id: m.id, role: m.role, parts: [{ type: "text", text: m.text }] } }));
        await applyMessageOps(db, thread.id, ops);
        await indexThreadMessages(deps, thread.id);
        messages += c.messages.length;
      }
    }),
  );
  return messages / ((performance.now() - started) / 1000);
}

const userCount = Number(args.users);
const base = Array.from({ length: Number(args.conversations) }, (_, n) => conversation(n % userCount, n, true));
const queries = base.map((c) => ({ ...c.query!, ownerIndex: c.ownerIndex }));

let owners = (await pool.query<{ id: string }>(`select id from users where email like '%@${DOMAIN}' and email like 'bench-%' order by email`)).rows.map((r) => r.id);
const indexed = await count("select count(distinct (thread_id, message_id))::int as n from message_chunks");
const baseMessages = base.reduce((n, c) => n + c.messages.length, 0);
if (args.reset || owners.length !== userCount || indexed < baseMessages) {
  const t0 = performance.now();
  const indexedBefore = await count("select count(*)::int as n from message_chunks");
  const deleted = await deleteUsersInEmailDomain(db, DOMAIN);
  if (deleted) console.log(`deleted ${deleted} users holding ${indexedBefore} indexed messages (cascades, statistics) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  owners = [];
  for (let i = 0; i < userCount; i++)
    owners.push((await createUser(db, { email: `bench-${String(i).padStart(3, "0")}@${DOMAIN}`, apiKeyHash: `bench-${crypto.randomUUID()}` })).id);
  const rate = await write(base, owners);
  console.log(`wrote and indexed ${baseMessages} messages of ${base.length} conversations (${userCount} users) at ${rate.toFixed(0)} messages/s`);
}
// The stored message ids are per thread: a query's answer is (its conversation's) message ids, which are unique across the corpus.

type Scores = { r1: number; r5: number; r10: number; mrr: number; ndcg: number };
async function quality(mode: SearchMode, subset = queries): Promise<Scores> {
  const s: Scores = { r1: 0, r5: 0, r10: 0, mrr: 0, ndcg: 0 };
  for (const q of subset) {
    const res = await searchCorpora(deps, { query: q.text, mode, limit: 10, corpus: "messages", scope: { ownerId: owners[q.ownerIndex]! } });
    const ids = res.results.map((r) => (r.type === "message" ? r.messageId : ""));
    const ranks = ids.flatMap((id, i) => (q.relevant.includes(id) ? [i + 1] : []));
    const first = ranks[0] ?? Infinity;
    s.r1 += first <= 1 ? 1 : 0;
    s.r5 += first <= 5 ? 1 : 0;
    s.r10 += first <= 10 ? 1 : 0;
    s.mrr += first <= 10 ? 1 / first : 0;
    const ideal = q.relevant.slice(0, 10).reduce((n, _, i) => n + 1 / Math.log2(i + 2), 0);
    s.ndcg += ranks.reduce((n, r) => n + 1 / Math.log2(r + 1), 0) / ideal;
  }
  for (const k of Object.keys(s) as (keyof Scores)[]) s[k] /= subset.length;
  return s;
}

async function qualityTable(label: string) {
  const chunks = await count("select count(*)::int as n from message_chunks");
  console.log(`\n${label}: ${chunks} indexed messages; ${queries.length} queries (${queries.filter((q) => q.paraphrased).length} paraphrased); embedder ${deps.embedder.name}`);
  console.log("| mode | queries | recall@1 | recall@5 | recall@10 | MRR@10 | nDCG@10 |\n|---|---|---|---|---|---|---|");
  for (const mode of MODES)
    for (const [name, subset] of [
      ["all", queries],
      ["same words", queries.filter((q) => !q.paraphrased)],
      ["paraphrased", queries.filter((q) => q.paraphrased)],
    ] as const) {
      const s = await quality(mode, subset);
      console.log(`| ${mode} | ${name} | ${s.r1.toFixed(3)} | ${s.r5.toFixed(3)} | ${s.r10.toFixed(3)} | ${s.mrr.toFixed(3)} | ${s.ndcg.toFixed(3)} |`);
    }
}

await qualityTable("base corpus");

const grow = Number(args.grow);
const have = await count("select count(*)::int as n from message_chunks");
if (grow > have) {
  // Growth: more of the same kind of chat, none of it with a fact. Half goes to the benchmark's users (their own
  // corpora grow), half to 200 other users (the shared tables and the HNSW graph grow).
  const others: string[] = [];
  for (let i = 0; i < 200; i++) others.push((await createUser(db, { email: `other-${crypto.randomUUID()}@${DOMAIN}`, apiKeyHash: `bench-${crypto.randomUUID()}` })).id);
  const all = [...owners, ...others];
  const extra: Conversation[] = [];
  let total = have;
  for (let n = 0; total < grow; n++) {
    const c = conversation(n % 2 ? Math.floor(n / 2) % userCount : userCount + (Math.floor(n / 2) % others.length), 1_000_000 + n, false);
    extra.push(c);
    total += c.messages.length;
  }
  const rate = await write(extra, all);
  console.log(`\ngrew by ${extra.reduce((n, c) => n + c.messages.length, 0)} messages in ${extra.length} conversations at ${rate.toFixed(0)} messages/s`);
}

if (grow > 0) await qualityTable("grown corpus");

if (args["skip-latency"]) {
  await pool.end();
  process.exit(0);
}
// Latency: limit 10, a warm-up pass, then one timed pass, one query at a time.
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const cachedDeps = (cache = memoryCache()): SearchDeps => ({ ...deps, cache, versions: kvCacheVersions(cache) });
const timed = queries.slice(0, Number(args["latency-queries"]));
const perUser = await pool.query<{ n: number }>(
  `select count(*)::int as n from message_chunks c join users u on u.id = c.owner_id where u.email like 'bench-%' group by c.owner_id`,
);
const sizes = perUser.rows.map((r) => r.n);
console.log(
  `\nlatency: ${await count("select count(*)::int as n from message_chunks")} indexed messages; the searching users hold ${Math.min(...sizes)}-${Math.max(...sizes)} each; ${timed.length} queries, limit 10`,
);
console.log("| scope | mode | p50 uncached | p95 uncached | p50 cached | p95 cached |\n|---|---|---|---|---|---|");
for (const corpus of ["messages", "all"] as const)
  for (const mode of MODES) {
    const run = async (d: SearchDeps) => {
      const ms: number[] = [];
      for (const q of timed) {
        const t0 = performance.now();
        await searchCorpora(d, { query: q.text, mode, limit: 10, corpus, scope: { ownerId: owners[q.ownerIndex]! } });
        ms.push(performance.now() - t0);
      }
      return ms;
    };
    await run(deps);
    const uncached = await run(deps);
    const fresh = cachedDeps();
    await run(fresh);
    const cached = await run(fresh);
    const f = (x: number) => `${x.toFixed(x < 1 ? 3 : 1)} ms`;
    console.log(`| ${corpus} | ${mode} | ${f(percentile(uncached, 0.5))} | ${f(percentile(uncached, 0.95))} | ${f(percentile(cached, 0.5))} | ${f(percentile(cached, 0.95))} |`);
  }
const size = (
  await pool.query(
    `select pg_size_pretty(pg_total_relation_size('message_chunks')) as chunks, pg_size_pretty(pg_total_relation_size('message_postings')) as postings, (select count(*) from message_postings)::int as n`,
  )
).rows[0];
console.log(`\nstorage: message_chunks ${size.chunks}, message_postings ${size.postings} (${size.n} postings)`);
await pool.end();
