import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { PRINCIPAL_HEADER } from "../src/auth/access.ts";
import { ChatClient, fetchApp, messageRows, threadsForEachTest, upgrade, threadAgent as agentStub } from "./support/helpers.ts";

const newThread = threadsForEachTest();
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
const transcript = (threadId: string) => runInDurableObject(agentStub(threadId), (agent: ThreadAgent) => agent.messages.map((m) => m.id));

describe("sub-agent routing (facets) from outside", () => {
  it("cannot reach another user's thread through a thread of one's own: paths, the subagent header, every verb", async () => {
    const attacker = await newThread();
    const victim = await newThread();
    const victimClient = await ChatClient.connect(victim.threadId, victim.apiKey);
    await victimClient.response(victimClient.sendChat("my secret plans").requestId);
    victimClient.close();
    const victimRows = await messageRows(victim.threadId);
    const a = `/agents/thread-agent/${attacker.threadId}`;
    const sub = `${a}/sub/thread-agent/${victim.threadId}`;
    const key = `?token=${attacker.apiKey}`;
    for (const path of [
      `${sub}/get-messages${key}`,
      `${sub}${key}`,
      `${a}/sub/thread-agent/${victim.threadId.toUpperCase()}/get-messages${key}`,
      `${a}/get-messages/sub/thread-agent/${victim.threadId}${key}`,
    ]) {
      const res = await fetchApp(path, {}, null);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type")).toContain("application/json");
      const ws = await upgrade(path);
      expect(ws.status, path).toBe(404);
      expect(ws.webSocket).toBeNull();
      for (const method of ["POST", "PUT", "DELETE"]) expect((await fetchApp(path, { method }, null)).status).toBe(404);
    }
    // The header the SDK reads on a plain connect: the attacker only ever reaches their own thread.
    const header = { "x-cf-agents-subagent-url": `http://threadline.test${sub}` };
    const client = await ChatClient.open(`${a}${key}`, header);
    await client.response(client.sendChat("write into theirs").requestId);
    client.close();
    const own = await fetchApp(`${a}/get-messages${key}`, { headers: header }, null);
    expect(((await own.json()) as unknown[]).length).toBe(2);
    expect(await transcript(attacker.threadId)).toHaveLength(2);
    // The victim's thread is as it was, in the agent and in Postgres.
    expect(await transcript(victim.threadId)).toEqual(victimRows.map((r) => r.id));
    expect(await messageRows(victim.threadId)).toEqual(victimRows);
  });

  it("the thread agent itself refuses to create a facet or to act as one", async () => {
    const { threadId, userId } = await newThread();
    const refused = await runInDurableObject(agentStub(threadId), (agent: ThreadAgent) => agent.onBeforeSubAgent());
    expect(refused.status).toBe(404);
    // A facet made from inside (a routing mistake elsewhere) answers nothing, even with a valid principal.
    const other = await newThread();
    const status = await runInDurableObject(agentStub(threadId), async (agent: ThreadAgent) => {
      const facet = await agent.subAgent(agent.constructor as typeof ThreadAgent, other.threadId);
      const headers = { [PRINCIPAL_HEADER]: JSON.stringify({ ownerId: other.userId, admin: true }) };
      return (await (facet as unknown as Fetcher).fetch(new Request(`http://x/agents/thread-agent/${other.threadId}/get-messages`, { headers }))).status;
    });
    expect(status).toBe(404);
    expect(userId).not.toBe(other.userId);
  });

  it("SDK headers from clients never reach the agent: a malformed x-agents-lifecycle-props is not a 500", async () => {
    const { threadId, apiKey } = await newThread();
    const headers = {
      "x-agents-lifecycle-props": "%%%not base64%%%",
      "x-cf-agents-anything": "1",
      [PRINCIPAL_HEADER]: JSON.stringify({ ownerId: crypto.randomUUID(), admin: true }),
    };
    const res = await fetchApp(`/agents/thread-agent/${threadId}/get-messages?token=${apiKey}`, { headers }, null);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([]);
    const client = await ChatClient.open(`/agents/thread-agent/${threadId}?token=${apiKey}`, headers);
    expect((await client.response(client.sendChat("still fine").requestId)).text).toBe("Echo: still fine");
    client.close();
    // A forged principal header alone (no credential) opens nothing.
    expect((await fetchApp(`/agents/thread-agent/${threadId}/get-messages`, { headers }, null)).status).toBe(401);
  });

  it("a request that skips the Worker's gate gets nothing from a thread agent", async () => {
    const { threadId } = await newThread();
    const res = await agentStub(threadId).fetch(new Request(`http://x/agents/thread-agent/${threadId}/get-messages`));
    expect(res.status).toBe(404);
  });
});

describe("one spelling of a thread id", () => {
  it("an upper-case id reaches the same agent as the canonical one, over WebSocket, get-messages and HTTP", async () => {
    const { threadId, apiKey } = await newThread();
    const upper = threadId.toUpperCase();
    const lower = await ChatClient.connect(threadId, apiKey);
    const shouting = await ChatClient.connect(upper, apiKey);
    const { requestId } = shouting.sendChat("said in capitals");
    await shouting.response(requestId);
    // The canonical socket saw the turn live: one agent.
    await lower.waitFor((f) => f.type === "cf_agent_use_chat_response" && f.id === requestId && f.done);
    lower.close();
    shouting.close();
    const viaUpper = (await (await fetchApp(`/agents/thread-agent/${upper}/get-messages?token=${apiKey}`, {}, null)).json()) as unknown[];
    expect(viaUpper).toHaveLength(2);
    expect(await transcript(threadId)).toHaveLength(2);
    expect(await runInDurableObject(agentStub(upper), (agent: ThreadAgent) => agent.messages.length)).toBe(0);
    const viaHttp = await fetchApp(`/api/v1/threads/${upper}`, {}, apiKey);
    expect(((await viaHttp.json()) as { thread: { id: string } }).thread.id).toBe(threadId);
  });
});

describe("other Durable Object classes", () => {
  it("are not routable from outside, with any credential", async () => {
    const { userId, apiKey } = await newThread();
    for (const path of [
      `/agents/user-authority/${userId}`,
      "/agents/outbox-monitor/global",
      `/agents/turn-limiter/${userId}`,
      `/agents/UserAuthority/${userId}/get-messages`,
      "/agents/thread-agent",
      "/agents/",
    ]) {
      for (const token of [apiKey, "test-admin-token-0123456789"]) {
        const res = await fetchApp(`${path}?token=${token}`, {}, null);
        expect(res.status, path).toBe(404);
        expect(await errorCode(res)).toBe("not_found");
        expect((await upgrade(`${path}?token=${token}`)).status).toBe(404);
      }
    }
  });
});
