import { describe, expect, it } from "vitest";
import { withDb } from "../src/db/client.ts";
import { applyMessageOps } from "../src/db/messages.ts";
import type { Cache, CacheVersions } from "../src/search/cache.ts";
import { indexThreadMessages } from "../src/search/message-index.ts";
import { ingestDocuments, removeDocument, search, searchCorpora, type SearchDeps } from "../src/search/search.ts";
import { searchDeps, workerCacheVersions } from "../src/search/deps.ts";
import { env } from "./support/env.ts";
import { threadsForEachTest } from "./support/helpers.ts";
import { uniqueWord } from "./support/search.ts";

const newThread = threadsForEachTest();

/** The real KV binding, made to enforce Workers KV's documented limit: a second write to one key within a second is refused (429). */
function limitedKv(kv: KVNamespace) {
  const last = new Map<string, number>();
  const log = { refused: [] as string[], puts: [] as { key: string; at: number }[] };
  const cache: Cache = {
    get: kv.get.bind(kv) as Cache["get"],
    put: async (key, value, options) => {
      const at = Date.now();
      if (at - (last.get(key) ?? -Infinity) < 1000) {
        log.refused.push(key);
        throw new Error(`KV PUT failed: 429 Too Many Requests (${key})`);
      }
      last.set(key, at);
      log.puts.push({ key, at });
      await kv.put(key, value, options);
    },
  };
  return { cache, log };
}

const withCache = (cache: Cache, versions?: CacheVersions): SearchDeps => ({ ...searchDeps(env), cache, versions: versions ?? workerCacheVersions(env, cache) });

describe("the search cache under a burst of writes", () => {
  it("takes many ingests and messages in one second: every write succeeds, no KV key is written twice in a second, and searches see every write", async () => {
    const { cache, log } = limitedKv(env.CACHE);
    const deps = withCache(cache);
    const a = await newThread();
    const b = await newThread();
    const w = uniqueWord();
    // Warm the caches the burst must invalidate.
    for (const ownerId of [a.userId, b.userId, null]) await search(deps, { query: w, mode: "hybrid", limit: 20, scope: { ownerId } });
    const started = Date.now();
    const global = Array.from({ length: 8 }, (_, i) => ingestDocuments(deps, null, [{ title: `Global ${i}`, text: `Shared ${w} notice ${i}.` }]));
    const users = [a, b].flatMap((t) => Array.from({ length: 8 }, (_, i) => ingestDocuments(deps, t.userId, [{ title: `Own ${i}`, text: `Private ${w} note ${i}.` }])));
    const messages = [a, b].map(async (t) => {
      await withDb(env, (db) =>
        applyMessageOps(
          db,
          t.threadId,
          Array.from({ length: 10 }, (_, i) => ({
            op: "upsert" as const,
            message: { id: `m${i}`, role: i % 2 ? ("assistant" as const) : ("user" as const), parts: [{ type: "text", text: `Message ${i} on ${w}.` }] },
          })),
        ),
      );
      return indexThreadMessages(deps, t.threadId);
    });
    const settled = await Promise.allSettled([...global, ...users, ...messages]);
    const elapsed = Date.now() - started;
    const globalIds = settled.slice(0, 8).flatMap((s) => (s.status === "fulfilled" ? (s.value as { id: string }[]).map((d) => d.id) : []));
    try {
      expect(settled.filter((s) => s.status === "rejected")).toEqual([]);
      expect(log.refused).toEqual([]);
      const byKey = new Map<string, { at: number }[]>();
      for (const p of log.puts) byKey.set(p.key, [...(byKey.get(p.key) ?? []), p]);
      for (const [key, puts] of byKey) for (let i = 1; i < puts.length; i++) expect(puts[i]!.at - puts[i - 1]!.at, key).toBeGreaterThanOrEqual(1000);
      // One key is written by every global ingest: the version of the global documents, coalesced.
      expect(byKey.get("search:version:global")!.length).toBeLessThanOrEqual(Math.ceil(elapsed / 1500) + 1);

      // Every search now sees every write: nothing cached before the burst is served.
      const own = await search(deps, { query: w, mode: "lexical", limit: 50, scope: { ownerId: a.userId } });
      expect(own.cached).toBe(false);
      expect(own.results.filter((r) => r.title.startsWith("Global")).length).toBe(8);
      expect(own.results.filter((r) => r.title.startsWith("Own")).length).toBe(8);
      const admin = await search(deps, { query: w, mode: "lexical", limit: 50, scope: { ownerId: null } });
      expect(admin.results.map((r) => r.title).filter((t) => t.startsWith("Global")).length).toBe(8);
      const msgs = await searchCorpora(deps, { query: w, mode: "lexical", limit: 50, scope: { ownerId: b.userId }, corpus: "messages" });
      expect(msgs.results.length).toBe(10);
      expect(msgs.results.every((r) => r.type === "message" && r.threadId === b.threadId)).toBe(true);
    } finally {
      await Promise.all(globalIds.map((id) => removeDocument(deps, id, { ownerId: null })));
    }
  });

  it("never fails a committed write because the cache could not be told", async () => {
    const t = await newThread();
    const w = uniqueWord();
    const broken: Cache = { get: async () => null, put: async () => Promise.reject(new Error("KV PUT failed: 429 Too Many Requests")) } as unknown as Cache;
    const failing: CacheVersions = { read: async () => "0", bump: async () => Promise.reject(new Error("the authority is unreachable")) };
    for (const deps of [withCache(broken), withCache(env.CACHE, failing)]) {
      const [doc] = await ingestDocuments(deps, t.userId, [{ title: "Kept", text: `Stored ${w} anyway.` }]);
      expect(doc!.id).toEqual(expect.any(String));
      expect(await removeDocument(deps, doc!.id, { ownerId: t.userId })).toBe(true);
    }
  });

  it("indexing waits out an embedder that is down, and loses nothing", async () => {
    const t = await newThread();
    const w = uniqueWord();
    const deps = searchDeps(env);
    await withDb(env, (db) => applyMessageOps(db, t.threadId, [{ op: "upsert", message: { id: "m1", role: "user", parts: [{ type: "text", text: `Kept for ${w}.` }] } }]));
    const down = { ...deps, embedder: { ...deps.embedder, embed: async () => Promise.reject(new Error("embedder down")) } };
    await expect(indexThreadMessages(down, t.threadId)).rejects.toThrow(/embedding model/);
    expect((await searchCorpora(deps, { query: w, mode: "lexical", limit: 5, scope: { ownerId: t.userId }, corpus: "messages" })).results).toEqual([]);
    expect(await indexThreadMessages(deps, t.threadId)).toBe(1);
    expect(
      (await searchCorpora(deps, { query: w, mode: "lexical", limit: 5, scope: { ownerId: t.userId }, corpus: "messages" })).results.map(
        (r) => r.type === "message" && r.messageId,
      ),
    ).toEqual(["m1"]);
  });
});
