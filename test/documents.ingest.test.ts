import { env } from "./support/env.ts";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { withDb } from "../src/db/client.ts";
import { searchPostings, searchTerms } from "../src/db/schema.ts";
import { createUserAndThread, fetchApp, postJson, threadsForEachTest } from "./support/helpers.ts";
import { documentsForEachTest, searchApi, uniqueWord } from "./support/search.ts";

const newUser = threadsForEachTest();
const ingest = documentsForEachTest();

describe("POST /api/v1/documents", () => {
  it("stores one document or a batch, chunked, and answers with ids and chunk counts", async () => {
    const { apiKey } = await newUser();
    const long = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} talks about ${uniqueWord()} in some detail for the chunker.`).join(" ");
    const one = await postJson("/api/v1/documents", { title: "Short", text: "Just one sentence." }, apiKey);
    expect(one.status).toBe(201);
    expect(((await one.json()) as { documents: { chunkCount: number }[] }).documents).toEqual([{ id: expect.any(String), title: "Short", chunkCount: 1 }]);
    const [a, b] = await ingest(
      [
        { title: "Long", text: long },
        { title: "Tiny", text: "Tiny." },
      ],
      apiKey,
    );
    expect(a!.chunkCount).toBeGreaterThan(1);
    expect(b!.chunkCount).toBe(1);
    const got = await fetchApp(`/api/v1/documents/${a!.id}`, {}, apiKey);
    expect(got.status).toBe(200);
    expect(((await got.json()) as { document: unknown }).document).toMatchObject({ id: a!.id, title: "Long", chunkCount: a!.chunkCount, global: false });
  });

  it("refuses malformed bodies and oversized batches with 422", async () => {
    const { apiKey } = await newUser();
    for (const body of [
      { title: "", text: "x" },
      { documents: [] },
      { documents: Array.from({ length: 51 }, () => ({ title: "t", text: "x" })) },
      { title: "t", text: "x", extra: 1 },
    ])
      expect((await postJson("/api/v1/documents", body, apiKey)).status).toBe(422);
  });
});

describe("document ownership", () => {
  it("shows a user their own and the global documents, never another user's", async () => {
    const [alice, bob] = await Promise.all([newUser(), newUser()]);
    const word = uniqueWord();
    const [mine] = await ingest([{ title: "Alice's notes", text: `Alice writes about ${word} daily.` }], alice.apiKey);
    const [shared] = await ingest([{ title: "Handbook", text: `The handbook covers ${word} for everyone.` }]);
    expect(shared).toBeDefined();

    const aliceSees = (await searchApi(word, alice.apiKey)).results.map((r) => r.title).sort();
    const bobSees = (await searchApi(word, bob.apiKey)).results.map((r) => r.title);
    expect(aliceSees).toEqual(["Alice's notes", "Handbook"]);
    expect(bobSees).toEqual(["Handbook"]);
    expect((await fetchApp(`/api/v1/documents/${mine!.id}`, {}, bob.apiKey)).status).toBe(404);
    expect((await fetchApp(`/api/v1/documents/${mine!.id}`, { method: "DELETE" }, bob.apiKey)).status).toBe(404);
    // A user cannot delete a global document; the admin can (after the test).
    expect((await fetchApp(`/api/v1/documents/${shared!.id}`, { method: "DELETE" }, alice.apiKey)).status).toBe(404);
    expect(((await (await fetchApp(`/api/v1/documents/${shared!.id}`, {}, alice.apiKey)).json()) as { document: { global: boolean } }).document.global).toBe(true);

    expect((await fetchApp(`/api/v1/documents/${mine!.id}`, { method: "DELETE" }, alice.apiKey)).status).toBe(204);
    expect((await fetchApp(`/api/v1/documents/${mine!.id}`, {}, alice.apiKey)).status).toBe(404);
    expect((await searchApi(word, alice.apiKey)).results.map((r) => r.title)).toEqual(["Handbook"]);
  });
});

describe("BM25 statistics", () => {
  const df = (lexeme: string) => withDb(env, async (db) => (await db.select().from(searchTerms).where(eq(searchTerms.lexeme, lexeme)))[0]?.df ?? 0);
  const postings = (lexeme: string) => withDb(env, async (db) => (await db.select().from(searchPostings).where(eq(searchPostings.lexeme, lexeme))).length);

  it("follow ingestion, deletion and the cascade from a deleted user", async () => {
    const user = await createUserAndThread();
    const w = uniqueWord();
    const [a] = await ingest(
      [
        { title: "A", text: `${w} ${w} appears twice here.` },
        { title: "B", text: `And ${w} once here.` },
      ],
      user.apiKey,
    );
    expect(await df(w)).toBe(2);
    expect(await postings(w)).toBe(2);
    expect((await fetchApp(`/api/v1/documents/${a!.id}`, { method: "DELETE" }, user.apiKey)).status).toBe(204);
    expect(await df(w)).toBe(1);
    await user.cleanup();
    expect(await df(w)).toBe(0);
    expect(await postings(w)).toBe(0);
  });

  it("stay exact under concurrent ingestion of overlapping vocabularies", async () => {
    const { apiKey } = await newUser();
    const w = uniqueWord();
    const batches = Array.from({ length: 6 }, (_, i) =>
      Array.from({ length: 4 }, (_, j) => ({ title: `B${i}D${j}`, text: `${w} shares words with its siblings: alpha beta gamma ${i}.` })),
    );
    await Promise.all(batches.map((docs) => ingest(docs, apiKey)));
    expect(await df(w)).toBe(24);
    expect(await postings(w)).toBe(24);
  });
});
