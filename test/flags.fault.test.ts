import { afterEach, describe, expect, it } from "vitest";
import { expireFlags } from "../src/flags/index.ts";
import { ChatClient, sendJson, setDatabase, threadsForEachTest, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();
afterEach(async () => {
  await setDatabase("up");
});

describe("flags while Postgres is down", () => {
  it("turns go on with the last flags read, or the configured defaults when none were", async () => {
    const [t, fresh] = await Promise.all([newThread(), newThread()]);
    expect((await sendJson("PUT", `/api/v1/admin/users/${t.userId}/flags/turn_rate_limit`, { value: 2 })).status).toBe(200);
    expect((await sendJson("PUT", `/api/v1/admin/threads/${fresh.threadId}/flags/chat_model`, { value: "never-read" })).status).toBe(200);
    // One connects while Postgres is up (a connection reads its thread's flags), the other once it is down.
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    expect((await client.response(client.sendChat("before").requestId)).error).toBeUndefined();

    await setDatabase("down");
    // The cached flags are due for a refresh, which cannot reach Postgres: the last ones (limit 2) still hold.
    expireFlags();
    const second = await client.response(client.sendChat("during").requestId);
    expect(second.error).toBeUndefined();
    expect(second.text).toBe("Echo: during");
    const third = await client.response(client.sendChat("one too many").requestId);
    expect(third.error).toMatchObject({ code: "rate_limited" });

    // A thread whose flags were never read gets the defaults (its chat_model override is out of reach).
    const other = await ChatClient.connect(fresh.threadId, fresh.apiKey);
    const reply = await other.response(other.sendChat("defaults").requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.chunks.find((c) => c.type === "start")).toMatchObject({ messageMetadata: { model: "fake-model" } });
    client.close();
    other.close();
  });

  it("a connection reads its thread's flags ahead of its first turn: that turn has them though Postgres is down by then", async () => {
    const t = await newThread();
    expect((await sendJson("PUT", `/api/v1/admin/threads/${t.threadId}/flags/chat_model`, { value: "read-at-connect" })).status).toBe(200);
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    await threadAgent(t.threadId).warmed();
    await setDatabase("down");
    const reply = await client.response(client.sendChat("first turn").requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.chunks.find((c) => c.type === "start")).toMatchObject({ messageMetadata: { model: "read-at-connect" } });
    client.close();
  });
});
