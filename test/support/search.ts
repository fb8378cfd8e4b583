import { env } from "cloudflare:workers";
import { afterEach } from "vitest";
import { hybridSearch } from "../../src/agent/tools/hybrid-search.ts";
import type { Config } from "../../src/config.ts";
import { getThread } from "../../src/db/threads.ts";
import type { LimiterStorage } from "../../src/authority/sliding-window.ts";
import type { SearchDeps } from "../../src/search/search.ts";
import { searchDeps } from "../../src/search/deps.ts";
import { fetchApp, postJson } from "./helpers.ts";

/** A word no other test's documents contain, so concurrent tests never see each other's hits. */
export const uniqueWord = () => `zq${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;

/**
 * For a test file: ingests documents through the API (as `token`'s caller) and deletes them after
 * each test. Users' documents also go with their users; global ones (the admin's) only this way.
 */
export function documentsForEachTest() {
  const made: string[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((id) => fetchApp(`/api/v1/documents/${id}`, { method: "DELETE" })));
  });
  return async (docs: { title: string; text: string }[], token?: string) => {
    const res = await postJson("/api/v1/documents", { documents: docs }, token);
    if (res.status !== 201) throw new Error(`ingest: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { documents: { id: string; title: string; chunkCount: number }[] };
    if (!token) made.push(...body.documents.map((d) => d.id));
    return body.documents;
  };
}

export type Hit = { documentId: string; chunkId: number; title: string; text: string; score: number };

export async function searchApi(q: string, token?: string, params: Record<string, string> = {}) {
  const res = await fetchApp(`/api/v1/search?${new URLSearchParams({ q, ...params })}`, {}, token);
  if (res.status !== 200) throw new Error(`search: ${res.status} ${await res.text()}`);
  return (await res.json()) as { results: Hit[]; cached: boolean; mode: string };
}

/** Durable Object storage's get/put over a Map, for driving the tool outside an agent. */
export function memoryStorage(): LimiterStorage {
  const m = new Map<string, unknown>();
  return { get: async (k: string) => m.get(k), put: async (k: string, v: unknown) => void m.set(k, v) } as unknown as LimiterStorage;
}

/** Runs the hybrid_search tool for a thread, as the agent would, with optional config overrides and a db wrapper. */
export function searchTool(threadId: string, overrides: Partial<Config> = {}, wrapDb?: (deps: SearchDeps) => SearchDeps["db"]) {
  const base = searchDeps(env);
  const deps = { ...base, db: wrapDb ? wrapDb(base) : base.db, config: { ...base.config, ...overrides } };
  // Looked up once, as the agent's ownerId() does.
  let owner: string | undefined;
  const ownerId = async () => (owner ??= (await base.db((db) => getThread(db, threadId)))!.userId);
  const t = hybridSearch({ env, threadId, storage: memoryStorage(), ownerId }, deps);
  return (input: { query: string; limit?: number }) =>
    t.execute!({ limit: 5, ...input }, { toolCallId: "test", messages: [], context: {} }) as unknown as Promise<Record<string, any>>;
}
