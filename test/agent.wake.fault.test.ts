import { describe, expect, it } from "vitest";
import { ChatClient, heldConnections, postJson, threadAgent, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();

describe("a new thread's agent, as its first socket connects", () => {
  it("reads its history and its settings on one Postgres connection", async () => {
    const t = await newThread();
    // Another thread of the user's first: the user's authority is then awake and has read what it reads.
    const first = await ChatClient.connect(t.threadId, t.apiKey);
    await threadAgent(t.threadId).warmed();
    first.close();
    const res = await postJson("/api/v1/threads", { title: "second" }, t.apiKey);
    const { thread } = (await res.json()) as { thread: { id: string } };
    const before = (await heldConnections()).opened;
    const client = await ChatClient.connect(thread.id, t.apiKey);
    await threadAgent(thread.id).warmed();
    // The history (none) and the flags and MCP servers its first turn needs: two connections when each took its own.
    expect((await heldConnections()).opened - before).toBe(1);
    client.close();
  });
});
