import { env } from "./support/env.ts";
import { describe, expect, it } from "vitest";
import { ChatClient, threadsForEachTest, fetchApp, messageRows } from "./support/helpers.ts";

// Runs once per OpenAI API style: the "responses" and "chat-completions" projects set OPENAI_API.
const api = env.OPENAI_API;
const fakeUrl = env.OPENAI_FAKE_URL;

const newThread = threadsForEachTest();

describe(`a WebSocket turn (${api} API)`, () => {
  it("streams the reply in order and persists both messages to Postgres", async () => {
    const { threadId } = await newThread();
    const client = await ChatClient.connect(threadId);
    const tag = crypto.randomUUID();
    const { requestId, message } = client.sendChat(`hello ${tag}`);
    const reply = await client.response(requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.text).toBe(`Echo: hello ${tag}`);
    // Many small deltas arrived, in order, ending with the done frame.
    expect(reply.chunks.filter((c) => c.type === "text-delta").length).toBeGreaterThan(5);
    expect(reply.frames.at(-1)!.done).toBe(true);

    const rows = await messageRows(threadId);
    expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
    expect(rows[0]!.id).toBe(message.id);
    expect(rows[0]!.parts).toEqual([{ type: "text", text: `hello ${tag}` }]);
    expect(rows[1]!.parts).toContainEqual(expect.objectContaining({ type: "text", text: `Echo: hello ${tag}` }));
    expect(rows[1]!.metadata).toMatchObject({ model: "fake-model", offline: false, usage: { outputTokens: expect.any(Number) } });
    expect(rows[0]!.seq).toBeLessThan(rows[1]!.seq);

    // The model was reached through the configured API style.
    const seen = (await (await fetch(`${fakeUrl.replace(/\/v1$/, "")}/__requests?contains=${tag}`)).json()) as { path: string }[];
    expect(seen.map((r) => r.path)).toEqual([api === "chat" ? "/v1/chat/completions" : "/v1/responses"]);
    client.close();
  });

  it("sends a model request again when its connection is lost unanswered", async () => {
    const { threadId } = await newThread();
    const client = await ChatClient.connect(threadId);
    const tag = crypto.randomUUID();
    const reply = await client.response(client.sendChat(`[drop] ${tag}`).requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.text).toBe(`Echo: [drop] ${tag}`);
    const seen = (await (await fetch(`${fakeUrl.replace(/\/v1$/, "")}/__requests?contains=${tag}`)).json()) as unknown[];
    expect(seen.length).toBe(2);
    client.close();
  });

  it("keeps the agent's history and the API's history identical across turns", async () => {
    const { threadId } = await newThread();
    const client = await ChatClient.connect(threadId);
    const first = client.sendChat("first");
    await client.response(first.requestId);
    const history = (await (await fetchApp(`/agents/thread-agent/${threadId}/get-messages`)).json()) as unknown[];
    const second = client.sendChat("second", history);
    await client.response(second.requestId);

    const agentView = (await (await fetchApp(`/agents/thread-agent/${threadId}/get-messages`)).json()) as { id: string; role: string; parts: unknown[] }[];
    const apiView = (await (await fetchApp(`/api/v1/threads/${threadId}/messages`)).json()) as { messages: { id: string; role: string; parts: unknown[] }[] };
    expect(agentView.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(apiView.messages.map(({ id, role, parts }) => ({ id, role, parts }))).toEqual(agentView.map(({ id, role, parts }) => ({ id, role, parts })));
    client.close();
  });

  it("persists tool calls and their results with the assistant message", async () => {
    const { threadId } = await newThread();
    const client = await ChatClient.connect(threadId);
    const { requestId } = client.sendChat("what time is it?");
    const reply = await client.response(requestId);
    expect(reply.chunks.map((c) => c.type)).toEqual(expect.arrayContaining(["tool-input-available", "tool-output-available"]));
    expect(reply.text).toMatch(/^Tool result: .*"iso":"\d{4}-/);

    const [, assistant] = await messageRows(threadId);
    const toolPart = (assistant!.parts as Record<string, unknown>[]).find((p) => p.type === "tool-current_time");
    expect(toolPart).toMatchObject({ state: "output-available", input: {}, output: { timeZone: "UTC", iso: expect.any(String) } });
    client.close();
  });

  it("streams the same turn to every client connected to the thread", async () => {
    const { threadId } = await newThread();
    const [sender, watcher] = await Promise.all([ChatClient.connect(threadId), ChatClient.connect(threadId)]);
    const { requestId } = sender.sendChat("to everyone");
    const [a, b] = await Promise.all([sender.response(requestId), watcher.response(requestId)]);
    expect(a.text).toBe("Echo: to everyone");
    expect(b.text).toBe(a.text);
    // The watcher also learns of the user's message itself.
    expect(watcher.frames.some((f) => f.type === "cf_agent_chat_messages" && JSON.stringify(f.messages).includes("to everyone"))).toBe(true);
    sender.close();
    watcher.close();
  });

  it("reports a failing model as an error frame and still keeps the user's message", async () => {
    const { threadId } = await newThread();
    const client = await ChatClient.connect(threadId);
    const { requestId, message } = client.sendChat("please [fail]");
    const reply = await client.response(requestId);
    expect(reply.error?.body).toBe("The model server had a problem (500). Try again in a moment.");
    const rows = await messageRows(threadId);
    expect(rows[0]).toMatchObject({ id: message.id, role: "user" });
    client.close();
  });
});

describe("connections to threads that do not exist", () => {
  it("refuses a WebSocket or a request for an unknown or malformed thread with 404", async () => {
    for (const id of [crypto.randomUUID(), "not-a-thread"]) {
      const ws = await fetchApp(`/agents/thread-agent/${id}`, { headers: { Upgrade: "websocket" } });
      expect(ws.status).toBe(404);
      expect(ws.webSocket).toBeNull();
      expect(await ws.json()).toEqual({ error: { code: "thread_not_found", message: expect.any(String) } });
      expect((await fetchApp(`/agents/thread-agent/${id}/get-messages`)).status).toBe(404);
    }
  });
});
