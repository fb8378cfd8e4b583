import { describe, expect, it } from "vitest";
import { ChatClient, threadsForEachTest, messageRows } from "./support/helpers";

const newThread = threadsForEachTest();

async function connected() {
  const t = await newThread();
  return { ...t, client: await ChatClient.connect(t.threadId) };
}

const chatRequest = (id: string, body: unknown) => ({
  type: "cf_agent_use_chat_request",
  id,
  init: { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) },
});

describe("bad WebSocket frames", () => {
  it("answer each malformed frame with an error frame and leave the connection usable", async () => {
    const { client, threadId } = await connected();
    client.send("{not json");
    client.send(JSON.stringify({ type: "no_such_frame" }));
    client.send(JSON.stringify([1, 2, 3]));
    client.ws.send(new Uint8Array([1, 2, 3]));
    await client.waitFor(() => client.frames.filter((f) => f.type === "error").length >= 4);
    expect(client.frames.filter((f) => f.type === "error").map((f) => f.error.code).sort()).toEqual(
      ["invalid_frame", "invalid_frame", "invalid_frame", "unknown_frame"].sort(),
    );
    const { requestId } = client.sendChat("still there?");
    expect((await client.response(requestId)).text).toBe("Echo: still there?");
    expect(await messageRows(threadId)).toHaveLength(2);
    client.close();
  });

  it("refuse an invalid chat request with a chat error for its id and persist nothing", async () => {
    const { client, threadId } = await connected();
    const cases: [string, unknown][] = [
      ["bad-json", "{oops"],
      ["no-messages", { trigger: "submit-message" }],
      ["assistant-last", { messages: [{ id: "a1", role: "assistant", parts: [{ type: "text", text: "I am the model" }] }] }],
      ["bad-role", { messages: [{ id: "x1", role: "root", parts: [] }] }],
      ["too-long", { messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: "x".repeat(32_001) }] }] }],
    ];
    for (const [id, body] of cases) client.send(chatRequest(id, body));
    for (const [id] of cases) {
      const frame = await client.waitFor((f) => f.type === "cf_agent_use_chat_response" && f.id === id);
      expect(frame).toMatchObject({ done: true, error: true, body: expect.any(String) });
    }
    expect(await messageRows(threadId)).toEqual([]);
    client.close();
  });
});
