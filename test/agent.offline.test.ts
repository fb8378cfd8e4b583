import { describe, expect, it } from "vitest";
import { ChatClient, threadsForEachTest, messageRows } from "./support/helpers.ts";

// Runs in the "offline" project: no OPENAI_API_KEY and no OPENAI_BASE_URL.
const newThread = threadsForEachTest();

describe("a turn without an API key", () => {
  it("is answered by the offline model, which searches first, streams in chunks and is marked in its metadata", async () => {
    const t = await newThread();
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    const { requestId } = client.sendChat("hello offline");
    const reply = await client.response(requestId);
    expect(reply.error).toBeUndefined();
    // It calls the tool it is offered (hybrid_search) with the question, then answers from the result.
    expect(reply.chunks).toContainEqual(
      expect.objectContaining({ type: "tool-input-available", toolName: "hybrid_search", input: expect.objectContaining({ query: "hello offline" }) }),
    );
    expect(reply.text).toBe(
      'Offline model: I searched your documents for "hello offline" and found nothing about it. Add a document that covers it, or set OPENAI_API_KEY to use a real model.',
    );
    expect(reply.chunks.filter((c) => c.type === "text-delta").length).toBeGreaterThan(5);

    const rows = await messageRows(t.threadId);
    expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
    expect(rows[1]!.metadata).toMatchObject({ model: "threadline-offline", offline: true, usage: { outputTokens: expect.any(Number) } });
    client.close();
  });
});
