import { describe, expect, it } from "vitest";
import { env } from "./support/env.ts";
import { threadsForEachTest } from "./support/helpers.ts";
import { documentsForEachTest, searchApi, uniqueWord } from "./support/search.ts";

const newUser = threadsForEachTest();
const ingest = documentsForEachTest();

describe("GET /api/v1/search", () => {
  it("ranks the matching document first in every mode, with ids, text and scores", async () => {
    const { apiKey } = await newUser();
    const w = uniqueWord();
    const [hit] = await ingest(
      [
        { title: "Volcanoes", text: `Basaltic volcanoes erupt ${w} lava in gentle flows. Their magma is hot and runny.` },
        { title: "Gardening", text: "Tomatoes need sun, water and patience. Prune the side shoots weekly." },
      ],
      apiKey,
    );
    for (const mode of ["lexical", "vector", "hybrid"]) {
      const res = await searchApi(`${w} lava flows from volcanoes`, apiKey, { mode, limit: "5" });
      expect(res.mode).toBe(mode);
      expect(res.results[0]).toEqual({
        type: "document",
        documentId: hit!.id,
        chunkId: expect.any(Number),
        title: "Volcanoes",
        text: expect.stringContaining(w),
        score: expect.any(Number),
      });
    }
  });

  it("sends the query's embedding again when its connection is lost unanswered", async () => {
    const { apiKey } = await newUser();
    const w = uniqueWord();
    await ingest([{ title: "Harbours", text: `The ${w} harbour shelters fishing boats.` }], apiKey);
    const res = await searchApi(`[embed-drop] ${w} harbour`, apiKey, { mode: "hybrid" });
    expect(res.results[0]).toMatchObject({ title: "Harbours" });
    const calls = (await (await fetch(`${env.OPENAI_FAKE_URL.replace(/\/v1$/, "")}/__embeddings?contains=${encodeURIComponent(`[embed-drop] ${w}`)}`)).json()) as string[][];
    expect(calls.length).toBe(2);
  });

  it("serves a repeated query from the cache until an ingestion changes the corpus", async () => {
    const { apiKey } = await newUser();
    const w = uniqueWord();
    await ingest([{ title: "First", text: `The first note about ${w}.` }], apiKey);
    const first = await searchApi(`${w}`, apiKey);
    expect(first.cached).toBe(false);
    const again = await searchApi(`  ${w.toUpperCase()} `, apiKey);
    expect(again).toEqual({ ...first, cached: true });

    await ingest([{ title: "Second", text: `A second note about ${w}.` }], apiKey);
    const after = await searchApi(w, apiKey);
    expect(after.cached).toBe(false);
    expect(after.results.map((r) => r.title).sort()).toEqual(["First", "Second"]);
  });

  it("validates the query string", async () => {
    const { apiKey } = await newUser();
    const { fetchApp } = await import("./support/helpers.ts");
    for (const qs of ["", "q=", "q=x&limit=0", "q=x&limit=101", "q=x&mode=fuzzy"]) expect((await fetchApp(`/api/v1/search?${qs}`, {}, apiKey)).status).toBe(422);
    expect((await fetchApp(`/api/v1/search?q=x`, {}, null)).status).toBe(401);
  });
});
