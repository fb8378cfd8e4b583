import { afterEach, describe, expect, it } from "vitest";
import { newApiKey } from "../src/auth/keys.ts";
import { ChatClient, heldConnections, eventually, fetchApp, messageRows, postJson, setDatabase, threadsForEachTest, uniqueEmail, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();
afterEach(async () => {
  await setDatabase("up");
});

const ticket = async (threadId: string, key: string) => {
  const res = await fetchApp(`/api/v1/threads/${threadId}/tickets`, { method: "POST" }, key);
  return { status: res.status, ticket: res.ok ? ((await res.json()) as { ticket: string }).ticket : "" };
};

describe("chat through a Postgres outage", () => {
  it("a known user connects, reconnects, reads history and chats; what needs Postgres gets a clear 503; revocations made before still hold", async () => {
    const a = await newThread();
    const b = await newThread();
    // Before the outage: a's thread has a turn; b rotates their key.
    const warm = await ChatClient.connect(a.threadId, a.apiKey);
    const first = await warm.response(warm.sendChat("before the outage").requestId);
    expect(first.error).toBeUndefined();
    warm.close();
    const rotated = ((await (await fetchApp("/api/v1/users/me/api-key", { method: "POST" }, b.apiKey)).json()) as { apiKey: string }).apiKey;

    await setDatabase("down");
    // A fresh socket, with the key and with a ticket issued during the outage, and the history.
    const byKey = await ChatClient.connect(a.threadId, a.apiKey);
    const during = byKey.sendChat("during the outage");
    expect((await byKey.response(during.requestId)).text).toBe("Echo: during the outage");
    byKey.close();
    const t = await ticket(a.threadId, a.apiKey);
    expect(t.status).toBe(201);
    const history = await fetchApp(`/agents/thread-agent/${a.threadId}/get-messages?ticket=${t.ticket}`, {}, null);
    expect(history.status).toBe(200);
    expect(((await history.json()) as unknown[]).length).toBe(4);
    const again = await ChatClient.open(`/agents/thread-agent/${a.threadId}?ticket=${t.ticket}`);
    const reconnected = again.sendChat("reconnected, still down");
    expect((await again.response(reconnected.requestId)).text).toBe("Echo: reconnected, still down");
    again.close();

    // What truly needs Postgres: a new user, a new thread, a key no authority has seen.
    const refused = async (res: Promise<Response>, status: number, code: string) => {
      const r = await res;
      expect(r.status).toBe(status);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe(code);
    };
    await refused(postJson("/api/v1/users", { email: uniqueEmail() }), 503, "database_unavailable");
    await refused(postJson("/api/v1/threads", {}, a.apiKey), 503, "database_unavailable");
    await refused(fetchApp(`/agents/thread-agent/${a.threadId}/get-messages?token=${newApiKey(crypto.randomUUID())}`, {}, null), 503, "database_unavailable");
    // b's old key stays revoked; the new one works.
    await refused(fetchApp(`/agents/thread-agent/${b.threadId}/get-messages?token=${b.apiKey}`, {}, null), 401, "unauthorized");
    expect((await fetchApp(`/agents/thread-agent/${b.threadId}/get-messages?token=${rotated}`, {}, null)).status).toBe(200);

    await setDatabase("up");
    const rows = await eventually(
      () => messageRows(a.threadId),
      (r) => r.length === 6,
    );
    expect(rows.map((r) => r.role)).toEqual(["user", "assistant", "user", "assistant", "user", "assistant"]);
    expect(rows.map((r) => r.id)).toEqual(expect.arrayContaining([during.message.id, reconnected.message.id]));
    // And the spend of the turns during the outage reached the ledger.
    const usage = await eventually(
      async () => ((await (await fetchApp("/api/v1/users/me/usage", {}, a.apiKey)).json()) as { usage: { turns: number } }).usage.turns,
      (n) => n === 3,
    );
    expect(usage).toBe(3);
  });

  it("a warm thread's turn does not wait on Postgres: with Postgres hung, the reply streams and finishes while its writes are still waiting", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    await client.response(client.sendChat("warm up").requestId);
    expect(await messageRows(threadId)).toHaveLength(2);
    await setDatabase("hang");
    const { requestId } = client.sendChat("while Postgres hangs");
    const reply = await client.response(requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.text).toBe("Echo: while Postgres hangs");
    // The turn's writes are in Postgres's hands, unanswered: held there, still in the outbox, and not one attempt has
    // even failed yet (that takes the 5 s connect timeout). So nothing between the frame and the reply waited for them.
    const { outbox } = await threadAgent(threadId).status();
    expect(outbox).toMatchObject({ backlog: 2, retryAttempt: 0 });
    // (The write embeds its messages first, then asks Postgres.)
    expect(
      (
        await eventually(
          () => heldConnections(),
          (h) => h.held > 0,
        )
      ).held,
    ).toBeGreaterThan(0);
    client.close();
    await setDatabase("up");
    expect(
      await eventually(
        () => messageRows(threadId),
        (r) => r.length === 4,
      ),
    ).toHaveLength(4);
  });
});
