import { describe, expect, it } from "vitest";
import { ChatClient, threadsForEachTest } from "./support/helpers.ts";
import { documentsForEachTest, searchApi, uniqueWord } from "./support/search.ts";

const newThread = threadsForEachTest();
const ingest = documentsForEachTest();

describe("search with no API key", () => {
  it("embeds offline, and the offline model answers citing the documents it found", async () => {
    const { threadId, apiKey } = await newThread();
    const w = uniqueWord();
    await ingest([{ title: "Tidal energy primer", text: `Tidal turbines near ${w} convert moving water into electricity.` }], apiKey);
    expect((await searchApi(`${w} turbines`, apiKey, { mode: "vector" })).results[0]?.title).toBe("Tidal energy primer");
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(client.sendChat(`how do ${w} turbines work?`).requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.text).toBe(`Offline model: your documents say:\n\n> Tidal turbines near ${w} convert moving water into electricity. [1]\n\nSources: [1] Tidal energy primer`);
    client.close();
  });
});
