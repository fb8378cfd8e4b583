import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { recentMetrics } from "../src/observability/metrics.ts";
import { ChatClient, eventually, fetchApp, messageRows, setDatabase, threadsForEachTest, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();
afterEach(async () => {
  await setDatabase("up");
});

describe("a turn while Postgres is down", () => {
  it("completes for the user, and its messages reach Postgres once it is back", async () => {
    const t = await newThread();
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    await setDatabase("down");
    const { requestId, message } = client.sendChat("are you there?");
    const reply = await client.response(requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.text).toBe("Echo: are you there?");

    // The messages wait in the agent's outbox, not lost and not yet in Postgres.
    const stub = threadAgent(t.threadId);
    expect(await runInDurableObject(stub, (agent: ThreadAgent) => agent.outbox.backlog)).toBeGreaterThanOrEqual(2);
    // /health says so too, while Postgres is down.
    // Agents report to the monitor as their writes fail, in the background: read once both have.
    type Health = { http: number; outbox: { threads: number; messages: number; oldestAt: number } };
    const health = await eventually(
      async (): Promise<Health> => {
        const res = await fetchApp("/health", {}, null);
        return { http: res.status, ...((await res.json()) as { outbox: Health["outbox"] }) };
      },
      (h) => h.outbox.messages >= 2,
    );
    expect(health.http).toBe(503);
    const { outbox } = health;
    expect(outbox.threads).toBeGreaterThanOrEqual(1);
    expect(outbox.messages).toBeGreaterThanOrEqual(2);

    await setDatabase("up");
    const rows = await eventually(
      () => messageRows(t.threadId),
      (r) => r.length === 2,
    );
    expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
    expect(rows[0]!.id).toBe(message.id);
    const status = (await (await fetchApp(`/api/v1/threads/${t.threadId}/status`, {}, t.apiKey)).json()) as { outbox: { backlog: number } };
    expect(status.outbox.backlog).toBe(0);
    // The backlog metric rose during the outage and came back to zero.
    const backlog = await eventually(
      async () => recentMetrics().flatMap((p) => (p.kind === "outbox" && p.threadId === t.threadId ? [p.backlog] : [])),
      (b) => b.at(-1) === 0,
    );
    expect(Math.max(...backlog)).toBeGreaterThanOrEqual(2);
    expect(backlog.at(-1)).toBe(0);
    client.close();
  });

  it("keeps several threads' turns going through an outage, and each lands in Postgres in the agent's order", async () => {
    const threads = await Promise.all([newThread(), newThread(), newThread()]);
    const clients = await Promise.all(threads.map((t) => ChatClient.connect(t.threadId, t.apiKey)));
    const turn = async (client: ChatClient, text: string) => {
      const reply = await client.response(client.sendChat(text).requestId);
      expect(reply.error).toBeUndefined();
    };
    await Promise.all(clients.map((c, i) => turn(c, `before ${i}`)));
    await setDatabase("down");
    for (let round = 0; round < 2; round++) await Promise.all(clients.map((c, i) => turn(c, `during ${i}.${round}`)));
    await setDatabase("up");
    await Promise.all(clients.map((c, i) => turn(c, `after ${i}`)));
    for (const [i, t] of threads.entries()) {
      const agentView = (await (await fetchApp(`/agents/thread-agent/${t.threadId}/get-messages`, {}, t.apiKey)).json()) as { id: string }[];
      expect(agentView).toHaveLength(8);
      const rows = await eventually(
        () => messageRows(t.threadId),
        (r) => r.length === 8,
      );
      expect(rows.map((r) => r.id)).toEqual(agentView.map((m) => m.id));
      clients[i]!.close();
    }
  });
});
