import { describe, expect, it } from "vitest";
import { ChatClient, httpTurn, fetchApp, messageRows, sendJson, threadsForEachTest } from "./support/helpers.ts";

// Runs in the "offline" project: no model configured, so the offline model answers unless the flag forbids it.
const newThread = threadsForEachTest();

describe("offline_model_allowed", () => {
  it("off for a user: their turns are refused with 503 model_unavailable / an error frame, nothing is stored, others are served; on again, they are answered", async () => {
    const [t, other] = await Promise.all([newThread(), newThread()]);
    expect((await sendJson("PUT", `/api/v1/admin/users/${t.userId}/flags/offline_model_allowed`, { value: false })).status).toBe(200);
    // chat_model means nothing to the offline model.
    expect((await sendJson("PUT", `/api/v1/admin/users/${t.userId}/flags/chat_model`, { value: "gpt-unused" })).status).toBe(200);

    const refused = await httpTurn(t.threadId, "anyone there?", t.apiKey);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ error: { code: "model_unavailable", message: expect.stringMatching(/offline model is turned off/) } });
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    const frame = await client.response(client.sendChat("over ws").requestId);
    expect(frame.error).toMatchObject({ error: true, code: "model_unavailable", body: expect.stringMatching(/offline_model_allowed/) });
    expect(await messageRows(t.threadId)).toEqual([]);

    expect((await httpTurn(other.threadId, "still offline", other.apiKey)).status).toBe(200);

    expect((await fetchApp(`/api/v1/admin/users/${t.userId}/flags/offline_model_allowed`, { method: "DELETE" })).status).toBe(204);
    const reply = await client.response(client.sendChat("now?").requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.text).toMatch(/^Offline model:/);
    const [, assistant] = await messageRows(t.threadId);
    expect(assistant!.metadata).toMatchObject({ model: "threadline-offline", offline: true });
    client.close();
  });
});

describe("hybrid_search off with the offline model", () => {
  it("is not offered the tool, so it answers without searching", async () => {
    const t = await newThread();
    expect((await sendJson("PUT", `/api/v1/admin/threads/${t.threadId}/flags/hybrid_search`, { value: false })).status).toBe(200);
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    const reply = await client.response(client.sendChat("look it up").requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.chunks.some((c) => c.type === "tool-input-available")).toBe(false);
    expect(reply.text).toBe('Offline model: you said "look it up". I am Threadline\'s built-in offline model; set OPENAI_API_KEY to talk to a real one.');
    client.close();
  });
});
