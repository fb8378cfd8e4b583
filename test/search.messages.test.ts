import { describe, expect, it } from "vitest";
import { withDb } from "../src/db/client.ts";
import { searchDeps } from "../src/search/deps.ts";
import { searchCorpora, type MessageResult as MessageHit, type SearchDeps } from "../src/search/search.ts";
import { messageChunks, messageCorpus, messageIndexQueue, messagePostings } from "../src/db/schema.ts";
import { eq } from "drizzle-orm";
import { env } from "./support/env.ts";
import { eventually, fetchApp, httpTurn, postJson, threadsForEachTest } from "./support/helpers.ts";
import { documentsForEachTest, uniqueWord } from "./support/search.ts";

const newThread = threadsForEachTest();
const ingest = documentsForEachTest();

type Hit = MessageHit | { type: "document"; documentId: string; title: string };
type Found = { results: Hit[]; cached: boolean; scope: string };

async function find(q: string, token: string | undefined, params: Record<string, string> = {}): Promise<Found> {
  const res = await fetchApp(`/api/v1/search?${new URLSearchParams({ q, scope: "messages", ...params })}`, {}, token);
  expect(res.status).toBe(200);
  return (await res.json()) as Found;
}
/**
 * A message search once its indexing (in the background, after the write reaches Postgres) shows `ok`.
 * Asked once a second: every search counts against the user's search rate (30 a minute), and a test
 * that waits on three writes' indexing on a loaded machine used them up at four a second.
 */
const found = (q: string, token: string, ok: (f: Found) => boolean, params?: Record<string, string>) => eventually(() => find(q, token, params), ok, 20_000, 1000);
/** The same search answered from the cache: the write's invalidation, just after its commit, may still void the first answer cached. */
const cachedSoon = (q: string, token: string) =>
  eventually(
    () => find(q, token),
    (f) => f.cached,
  );
const turn = async (threadId: string, text: string, key: string) => expect((await httpTurn(threadId, text, key)).status).toBe(200);

describe("search across conversations", () => {
  it("finds the caller's own messages, with thread, id, role, time and a highlighted snippet, and never another user's", async () => {
    const alice = await newThread("Harbour notes");
    const bob = await newThread();
    const w = uniqueWord();
    await turn(alice.threadId, `The ferry to ${w} island leaves at 7:40 from pier four.`, alice.apiKey);
    await turn(bob.threadId, `Bob also asks about ${w} island.`, bob.apiKey);
    const mine = await found(`when does the ferry to ${w} leave`, alice.apiKey, (f) => f.results.length === 2);
    expect(mine.scope).toBe("messages");
    const [question, reply] = [
      mine.results.find((r) => r.type === "message" && r.role === "user"),
      mine.results.find((r) => r.type === "message" && r.role === "assistant"),
    ] as MessageHit[];
    expect(question).toMatchObject({
      type: "message",
      threadId: alice.threadId,
      threadTitle: "Harbour notes",
      role: "user",
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(question!.snippet).toBe(`The ferry to ${w} island leaves at 7:40 from pier four.`);
    expect(question!.highlights.map(([a, b]) => question!.snippet.slice(a, b))).toEqual(["ferry", w, "leaves"]);
    expect(reply!.snippet).toContain(`Echo: The ferry to ${w}`);
    // The reply's id is the one the thread's history has.
    const history = (await (await fetchApp(`/api/v1/threads/${alice.threadId}/messages`, {}, alice.apiKey)).json()) as { messages: { id: string }[] };
    expect(history.messages.map((m) => m.id)).toEqual([question!.messageId, reply!.messageId]);
    // Bob's search sees Bob's messages only; the admin has none.
    const his = await found(w, bob.apiKey, (f) => f.results.length === 2);
    expect(his.results.every((r) => r.type === "message" && r.threadId === bob.threadId)).toBe(true);
    expect((await find(w, undefined)).results).toEqual([]);
  });

  it("scope=documents (the default) finds no messages, scope=all ranks documents and messages together", async () => {
    const t = await newThread();
    const w = uniqueWord();
    await ingest([{ title: "Tide tables", text: `High tide at ${w} bay is at noon.` }], t.apiKey);
    await turn(t.threadId, `What time is high tide at ${w} bay?`, t.apiKey);
    const all = await found(`${w} high tide`, t.apiKey, (f) => f.results.filter((r) => r.type === "message").length === 2, { scope: "all" });
    expect(all.results.map((r) => r.type).sort()).toEqual(["document", "message", "message"]);
    const docs = await find(`${w} high tide`, t.apiKey, { scope: "documents" });
    expect(docs.results.map((r) => r.type)).toEqual(["document"]);
    const plain = (await (await fetchApp(`/api/v1/search?q=${w}`, {}, t.apiKey)).json()) as Found;
    expect(plain.scope).toBe("documents");
    expect(plain.results.map((r) => r.type)).toEqual(["document"]);
    expect((await fetchApp(`/api/v1/search?q=${w}&scope=threads`, {}, t.apiKey)).status).toBe(422);
  });

  it("a clear, a thread's deletion and a user's deletion take their messages out of search, cached answers included", async () => {
    const a = await newThread();
    const b = await newThread();
    const w = uniqueWord();
    await turn(a.threadId, `Clearing ${w} now.`, a.apiKey);
    const before = await found(w, a.apiKey, (f) => f.results.length === 2);
    expect((await cachedSoon(w, a.apiKey)).cached).toBe(true);
    expect(before.cached).toBe(false);
    expect((await fetchApp(`/api/v1/threads/${a.threadId}/messages`, { method: "DELETE" }, a.apiKey)).status).toBe(204);
    expect((await found(w, a.apiKey, (f) => f.results.length === 0)).results).toEqual([]);

    // The thread: its messages go by cascade, and with them the owner's index rows and statistics.
    const t2 = ((await (await postJson("/api/v1/threads", {}, a.apiKey)).json()) as { thread: { id: string } }).thread.id;
    await turn(t2, `Deleting ${w} next.`, a.apiKey);
    await found(w, a.apiKey, (f) => f.results.length === 2);
    expect((await fetchApp(`/api/v1/threads/${t2}`, { method: "DELETE" }, a.apiKey)).status).toBe(204);
    const after = await find(w, a.apiKey);
    expect(after).toMatchObject({ results: [], cached: false });
    const rows = await withDb(env, async (db) => ({
      chunks: (await db.select().from(messageChunks).where(eq(messageChunks.ownerId, a.userId))).length,
      postings: (await db.select().from(messagePostings).where(eq(messagePostings.ownerId, a.userId))).length,
      corpus: (await db.select().from(messageCorpus).where(eq(messageCorpus.ownerId, a.userId))).length,
      queued: (await db.select().from(messageIndexQueue).where(eq(messageIndexQueue.threadId, t2))).length,
    }));
    expect(rows).toEqual({ chunks: 0, postings: 0, corpus: 0, queued: 0 });

    // The user: everything of theirs goes.
    await turn(b.threadId, `Bob mentions ${w} too.`, b.apiKey);
    await found(w, b.apiKey, (f) => f.results.length === 2);
    expect((await fetchApp(`/api/v1/users/${b.userId}`, { method: "DELETE" })).status).toBe(204);
    const left = await withDb(
      env,
      async (db) =>
        (await db.select().from(messageChunks).where(eq(messageChunks.ownerId, b.userId))).length +
        (await db.select().from(messagePostings).where(eq(messagePostings.ownerId, b.userId))).length,
    );
    expect(left).toBe(0);
  });

  it("a search that read 'nothing indexed' (a state that comes back after a clear) is not cached: it may have seen messages indexed just after", async () => {
    const a = await newThread();
    const w = uniqueWord();
    const base = searchDeps(env);
    let calls = 0;
    // The search's first query reads the version of the owner's message index; the thread's turn is indexed right after it.
    const racing: SearchDeps = {
      ...base,
      db: async (fn) => {
        const result = await base.db(fn);
        if (++calls === 1) {
          await turn(a.threadId, `Racing ${w} now.`, a.apiKey);
          await found(w, a.apiKey, (f) => f.results.length === 2);
        }
        return result;
      },
    };
    const raced = await searchCorpora(racing, { query: w, mode: "hybrid", limit: 10, corpus: "messages", scope: { ownerId: a.userId } });
    expect(raced.results).toHaveLength(2);
    expect((await fetchApp(`/api/v1/threads/${a.threadId}/messages`, { method: "DELETE" }, a.apiKey)).status).toBe(204);
    expect(await found(w, a.apiKey, (f) => f.results.length === 0)).toMatchObject({ results: [], cached: false });
  });

  it("a user's cached searches are invalidated by their own writes only", async () => {
    const a = await newThread();
    const b = await newThread();
    const w = uniqueWord();
    await turn(a.threadId, `First note on ${w}.`, a.apiKey);
    await found(w, a.apiKey, (f) => f.results.length === 2);
    expect((await cachedSoon(w, a.apiKey)).cached).toBe(true);
    // Another user's message, and another user's document, leave a's cache alone.
    await turn(b.threadId, `Unrelated ${w}.`, b.apiKey);
    await found(w, b.apiKey, (f) => f.results.length === 2);
    await ingest([{ title: "B's", text: `B's document about ${w}.` }], b.apiKey);
    expect((await find(w, a.apiKey)).cached).toBe(true);
    // a's own next message is found, uncached.
    await turn(a.threadId, `Second note on ${w}.`, a.apiKey);
    const fresh = await found(w, a.apiKey, (f) => f.results.length === 4);
    expect(fresh.cached).toBe(false);
  });

  it("is in the OpenAPI document: the scope parameter and the message result", async () => {
    const doc = (await (await fetchApp("/api/v1/openapi.json", {}, null)).json()) as { paths: Record<string, any>; components: { schemas: Record<string, any> } };
    const params = doc.paths["/api/v1/search"].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(expect.arrayContaining(["q", "limit", "mode", "scope"]));
    expect(Object.keys(doc.components.schemas.MessageSearchHit.properties)).toEqual([
      "type",
      "threadId",
      "threadTitle",
      "messageId",
      "role",
      "createdAt",
      "snippet",
      "highlights",
      "score",
    ]);
  });
});
