import { afterEach, describe, expect, it } from "vitest";
import { ChatClient, eventually, fetchApp, setDatabase, threadsForEachTest } from "./support/helpers.ts";
import { uniqueWord } from "./support/search.ts";

const newThread = threadsForEachTest();
afterEach(async () => {
  await setDatabase("up");
});

const search = async (q: string, key: string) => {
  const res = await fetchApp(`/api/v1/search?${new URLSearchParams({ q, scope: "messages" })}`, {}, key);
  return res.status === 200 ? ((await res.json()) as { results: { messageId: string }[] }).results : undefined;
};

describe("message search through a Postgres outage", () => {
  it("a message written while Postgres is down is found once it is back: indexing waits, nothing is lost", async () => {
    const t = await newThread();
    const w = uniqueWord();
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    await setDatabase("down");
    const during = client.sendChat(`Written during the outage: ${w} lighthouse.`);
    expect((await client.response(during.requestId)).text).toBe(`Echo: Written during the outage: ${w} lighthouse.`);
    client.close();
    expect(await search(w, t.apiKey)).toBeUndefined();
    await setDatabase("up");
    // The outbox retries with backoff (1 s, 2 s, ...); indexing follows the write that lands.
    const hits = await eventually(
      () => search(w, t.apiKey),
      (r) => r?.length === 2,
      30_000,
      500,
    );
    expect(hits?.map((h) => h.messageId)).toContain(during.message.id);
  });
});
