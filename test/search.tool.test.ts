import { describe, expect, it } from "vitest";
import { ChatClient, messageRows, threadsForEachTest } from "./support/helpers.ts";
import { documentsForEachTest, searchTool, uniqueWord } from "./support/search.ts";

const newThread = threadsForEachTest();
const ingest = documentsForEachTest();

describe("the hybrid_search tool", () => {
  it("is called by the model in a real turn, and the answer carries the results", async () => {
    const { threadId, apiKey } = await newThread();
    const w = uniqueWord();
    await ingest([{ title: "Penguin field guide", text: `Emperor penguins huddle together in winter; ${w} is their rookery.` }], apiKey);
    const client = await ChatClient.connect(threadId, apiKey);
    const { requestId } = client.sendChat(`search ${w} penguins`);
    const reply = await client.response(requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.chunks.map((c) => c.type)).toEqual(expect.arrayContaining(["tool-input-available", "tool-output-available"]));
    expect(reply.text).toMatch(/^Tool result: .*"status":"ok".*Penguin field guide/);
    const [, assistant] = await messageRows(threadId);
    const part = (assistant!.parts as Record<string, any>[]).find((p) => p.type === "tool-hybrid_search");
    expect(part).toMatchObject({ state: "output-available", input: { query: `search ${w} penguins`, limit: 3 }, output: { status: "ok", cached: false } });
    expect(part!.output.results[0]).toMatchObject({ title: "Penguin field guide", documentId: expect.any(String), chunkId: expect.any(Number), score: expect.any(Number) });
    client.close();
  });

  it("only finds the thread owner's documents and the global ones", async () => {
    const [alice, bob] = await Promise.all([newThread(), newThread()]);
    const w = uniqueWord();
    await ingest([{ title: "Alice only", text: `Private ${w} notes.` }], alice.apiKey);
    await ingest([{ title: "Everyone", text: `Shared ${w} notes.` }]);
    const titles = async (threadId: string) => ((await searchTool(threadId)({ query: w })).results as { title: string }[]).map((r) => r.title).sort();
    expect(await titles(alice.threadId)).toEqual(["Alice only", "Everyone"]);
    expect(await titles(bob.threadId)).toEqual(["Everyone"]);
  });

  it("answers repeats from the cache and sees a new document at once", async () => {
    const { threadId, apiKey } = await newThread();
    const w = uniqueWord();
    await ingest([{ title: "Old", text: `Old ${w}.` }], apiKey);
    const run = searchTool(threadId);
    expect(await run({ query: w })).toMatchObject({ status: "ok", cached: false });
    expect(await run({ query: w })).toMatchObject({ status: "ok", cached: true });
    await ingest([{ title: "New", text: `New ${w}.` }], apiKey);
    const fresh = await run({ query: w });
    expect(fresh).toMatchObject({ status: "ok", cached: false });
    expect(fresh.results.map((r: { title: string }) => r.title).sort()).toEqual(["New", "Old"]);
  });

  it("in turns, answers a search an earlier turn made from the cache, and sees a document uploaded between turns", async () => {
    const { threadId, apiKey } = await newThread();
    const w = uniqueWord();
    await ingest([{ title: "Old", text: `Old ${w}.` }], apiKey);
    const client = await ChatClient.connect(threadId, apiKey);
    const searched = async () => {
      const { requestId } = client.sendChat(`search ${w}`);
      const reply = await client.response(requestId);
      const output = reply.chunks.find((c) => c.type === "tool-output-available")?.output as { cached: boolean; results: { title: string }[] };
      return { cached: output.cached, titles: output.results.map((r) => r.title).sort() };
    };
    expect(await searched()).toEqual({ cached: false, titles: ["Old"] });
    // The first turn's messages, written meanwhile, leave the owner's document searches cached.
    expect(await searched()).toEqual({ cached: true, titles: ["Old"] });
    await ingest([{ title: "New", text: `New ${w}.` }], apiKey);
    // The turn's cache version comes with its admission: one taken after the upload.
    expect(await searched()).toEqual({ cached: false, titles: ["New", "Old"] });
    client.close();
  });

  it("returns rate_limited with the wait once the thread's budget is spent", async () => {
    const { threadId } = await newThread();
    const run = searchTool(threadId, { SEARCH_RATE_LIMIT: 2, SEARCH_RATE_WINDOW_SECONDS: 30 });
    await run({ query: "one" });
    await run({ query: "two" });
    expect(await run({ query: "three" })).toEqual({ status: "rate_limited", retryAfterSeconds: expect.any(Number), message: expect.stringMatching(/rate limited/) });
  });
});
