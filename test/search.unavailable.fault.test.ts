import { afterEach, describe, expect, it } from "vitest";
import { ChatClient, setDatabase, threadsForEachTest } from "./support/helpers.ts";
import { searchTool, uniqueWord } from "./support/search.ts";

const newThread = threadsForEachTest();

afterEach(async () => {
  await setDatabase("up");
});

describe("hybrid_search when Postgres is down", () => {
  it("retries the transient fault, then returns search_unavailable instead of throwing", async () => {
    const { threadId } = await newThread();
    let attempts = 0;
    const run = searchTool(threadId, { SEARCH_RETRIES: 2 }, (deps) => (fn) => (attempts++, deps.db(fn)));
    expect(await run({ query: "warm up the owner lookup" })).toMatchObject({ status: "ok" });
    attempts = 0;
    await setDatabase("down");
    expect(await run({ query: uniqueWord() })).toEqual({ status: "search_unavailable", message: expect.any(String) });
    expect(attempts).toBe(3);
    await setDatabase("up");
    expect(await run({ query: uniqueWord() })).toMatchObject({ status: "ok", cached: false });
  });

  it("lets the turn finish with the model told that search failed", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    // The first turn resolves the thread's owner while Postgres is up.
    await client.response(client.sendChat("hello").requestId);
    await setDatabase("down");
    const reply = await client.response(client.sendChat(`search ${uniqueWord()}`).requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.text).toMatch(/^Tool result: .*"status":"search_unavailable"/);
    client.close();
  });
});
