// npm run bench:search -- [--database URL] [--queries FILE] [--qrels FILE] [--out FILE] [--grow CHUNKS] [--reingest]
//   [--modes lexical,vector,hybrid] [--vector-weight W] [--skip-quality] [--skip-latency] [--latency-queries N]
// Ingests SciFact through the project's ingestion code, runs every query through the tool's search
// function in each mode, and prints nDCG@10, recall@10/100 and latency. Needs a real PostgreSQL with
// pgvector (BENCH_DATABASE_URL or --database); the database is used for the corpus and nothing else.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { applyMigrations } from "../scripts/lib/postgres.ts";
import { getConfig } from "../src/config.ts";
import type { SearchMode } from "../src/db/documents.ts";
import { memoryCache } from "../src/search/cache.ts";
import { embedderFor } from "../src/search/embeddings.ts";
import { ingestDocuments, search, type SearchDeps } from "../src/search/search.ts";

const data = new URL("../../shared/data/scifact/", import.meta.url).pathname;
const { values: args } = parseArgs({
  options: {
    database: { type: "string", default: process.env.BENCH_DATABASE_URL },
    queries: { type: "string", default: `${data}queries_train.jsonl` },
    qrels: { type: "string", default: `${data}qrels/train.tsv` },
    corpus: { type: "string", default: `${data}corpus.jsonl` },
    out: { type: "string" },
    grow: { type: "string", default: "0" },
    reingest: { type: "boolean", default: false },
    modes: { type: "string", default: "lexical,vector,hybrid" },
    "vector-weight": { type: "string" },
    "skip-latency": { type: "boolean", default: false },
    "skip-quality": { type: "boolean", default: false },
    "latency-queries": { type: "string" },
  },
});
if (!args.database) throw new Error("set BENCH_DATABASE_URL or --database to a PostgreSQL with pgvector (its documents are replaced)");

const MODES = args.modes.split(",") as SearchMode[];
const SOURCE = "scifact:";
const jsonl = <T>(file: string): T[] =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);

await applyMigrations(args.database);
const client = new pg.Client({ connectionString: args.database });
client.on("error", () => {});
await client.connect();
const db = drizzle(client);
// One configuration parse, the Worker's, over the process environment.
const config = getConfig(process.env as unknown as Env);
const embedder = embedderFor(config);
if (args["vector-weight"]) embedder.fusionWeight = Number(args["vector-weight"]);
const deps: SearchDeps = { db: (fn) => fn(db), embedder, config };
const cachedDeps: SearchDeps = { ...deps, cache: memoryCache() };

type Doc = { _id: string; title: string; text: string };
const corpus = jsonl<Doc>(args.corpus);
const count = async (where: string) => Number((await client.query(`select count(*)::int as n from documents where ${where}`)).rows[0].n);

const have = await count(`source like '${SOURCE}%'`);
const chunksNow = Number((await client.query(`select count(*)::int as n from chunks where embedder = $1`, [embedder.name])).rows[0].n);
if (args.reingest || have !== corpus.length || chunksNow === 0) {
  await client.query("delete from documents");
  const t0 = performance.now();
  for (let i = 0; i < corpus.length; i += 200)
    await ingestDocuments(
      deps,
      null,
      corpus.slice(i, i + 200).map((d) => ({ title: d.title, text: d.text, source: SOURCE + d._id })),
    );
  console.log(`ingested ${corpus.length} documents in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const docIds = new Map<string, string>();
for (const r of (await client.query("select id, source from documents where source like $1", [`${SOURCE}%`])).rows) docIds.set(r.id, r.source.slice(SOURCE.length));

const grow = Number(args.grow);
if (grow > 0) await growCorpus(grow);
const stats = (await client.query("select (select count(*) from documents)::int as docs, (select count(*) from chunks)::int as chunks")).rows[0];
console.log(`corpus: ${stats.docs} documents, ${stats.chunks} chunks; embedder ${embedder.name}; candidates per side ${config.SEARCH_CANDIDATES}`);

const queries = jsonl<{ _id: string; text: string }>(args.queries);
const qrels = new Map<string, Set<string>>();
for (const line of readFileSync(args.qrels, "utf8").split("\n").slice(1)) {
  const [q, d, s] = line.split("\t");
  if (q && d && Number(s) > 0) (qrels.get(q) ?? qrels.set(q, new Set()).get(q)!).add(d);
}
const judged = queries.filter((q) => qrels.has(q._id));

const global = { ownerId: null };
const ranked = async (mode: SearchMode, text: string) => {
  const { results } = await search(deps, { query: text, mode, limit: 100, scope: global });
  return [...new Set(results.flatMap((r) => docIds.get(r.documentId) ?? []))].slice(0, 100);
};

// One CSV per mode: runs.csv becomes runs.lexical.csv, runs.vector.csv, runs.hybrid.csv.
const outFile = (mode: string) => args.out!.replace(/(\.csv)?$/, `.${mode}.csv`);
for (const mode of args["skip-quality"] ? [] : MODES) {
  let ndcg = 0,
    r10 = 0,
    r100 = 0;
  const csv: string[] = ["query_id,doc_id,rank"];
  for (const q of queries) {
    const docs = await ranked(mode, q.text);
    if (args.out) for (const [i, d] of docs.entries()) csv.push(`${q._id},${d},${i + 1}`);
    const rel = qrels.get(q._id);
    if (!rel) continue;
    const dcg = docs.slice(0, 10).reduce((s, d, i) => s + (rel.has(d) ? 1 / Math.log2(i + 2) : 0), 0);
    let idcg = 0;
    for (let i = 0; i < Math.min(rel.size, 10); i++) idcg += 1 / Math.log2(i + 2);
    ndcg += dcg / idcg;
    r10 += docs.slice(0, 10).filter((d) => rel.has(d)).length / rel.size;
    r100 += docs.filter((d) => rel.has(d)).length / rel.size;
  }
  const n = judged.length || 1;
  console.log(`${mode.padEnd(8)} nDCG@10 ${(ndcg / n).toFixed(4)}  recall@10 ${(r10 / n).toFixed(4)}  recall@100 ${(r100 / n).toFixed(4)}  (${judged.length} judged queries)`);
  if (args.out) writeFileSync(outFile(mode), csv.join("\n") + "\n");
}

// Latency, limit 10 as the tool asks by default: every query once to warm up, then timed.
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const time = async (d: SearchDeps, mode: SearchMode) => {
  const ms: number[] = [];
  for (const q of queries.slice(0, Number(args["latency-queries"] ?? queries.length))) {
    const t = performance.now();
    await search(d, { query: q.text, mode, limit: 10, scope: global });
    ms.push(performance.now() - t);
  }
  return ms;
};
for (const mode of args["skip-latency"] ? [] : MODES) {
  await time(deps, mode);
  const uncached = await time(deps, mode);
  await time(cachedDeps, mode); // fills the cache
  const cached = await time(cachedDeps, mode);
  console.log(
    `${mode.padEnd(8)} latency uncached p50 ${pct(uncached, 50).toFixed(2)} ms p95 ${pct(uncached, 95).toFixed(2)} ms | cached p50 ${pct(cached, 50).toFixed(3)} ms p95 ${pct(cached, 95).toFixed(3)} ms`,
  );
}
// HNSW against an exact scan: the share of the true 10 nearest chunks the index returns (200 queries).
{
  const sample = queries.slice(0, 200);
  const vectors = await embedder.embed(sample.map((q) => q.text));
  const knn = `select id from chunks where embedder = $2 order by embedding <=> $1::vector limit 10`;
  let found = 0;
  for (const v of vectors) {
    await client.query("begin");
    await client.query(`set local hnsw.ef_search = ${config.SEARCH_CANDIDATES}`);
    const approx = new Set((await client.query(knn, [JSON.stringify(v), embedder.name])).rows.map((r) => r.id));
    await client.query("set local enable_indexscan = off");
    const exact = (await client.query(knn, [JSON.stringify(v), embedder.name])).rows.map((r) => r.id);
    await client.query("commit");
    found += exact.filter((id) => approx.has(id)).length / Math.max(1, exact.length);
  }
  console.log(`hnsw     recall@10 against an exact scan ${(found / vectors.length).toFixed(4)} (ef_search ${config.SEARCH_CANDIDATES}, ${vectors.length} queries)`);
}
await client.end();

/** Adds synthetic documents (SciFact sentences reshuffled, so the vocabulary stays realistic) until the corpus has `target` chunks. */
async function growCorpus(target: number) {
  const have = Number((await client.query("select count(*)::int as n from chunks")).rows[0].n);
  if (have >= target) return;
  const sentences = corpus.flatMap((d) => d.text.split(/(?<=\.)\s+/));
  let seed = 42;
  const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const t0 = performance.now();
  let added = 0;
  while (have + added < target) {
    const batch = Array.from({ length: 500 }, (_, i) => ({
      title: `synthetic ${have + added + i}`,
      text: Array.from({ length: 8 }, () => sentences[Math.floor(rand() * sentences.length)]).join(" "),
      source: "synthetic",
    }));
    const rows = await ingestDocuments(deps, null, batch);
    added += rows.reduce((s, r) => s + r.chunkCount, 0);
  }
  console.log(`grew the corpus by ${added} chunks in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
