import { env } from "./support/env.ts";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { signTicket } from "../src/auth/tickets.ts";
import type { UserAuthority } from "../src/authority/user-authority.ts";
import { ChatClient, fetchApp, threadsForEachTest, upgrade, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();
const ticketFor = async (threadId: string, key: string) => {
  const res = await fetchApp(`/api/v1/threads/${threadId}/tickets`, { method: "POST" }, key);
  return { res, body: (await res.clone().json()) as { ticket: string; expiresAt: string; error?: { code: string } } };
};
const messages = (threadId: string, ticket: string) => fetchApp(`/agents/thread-agent/${threadId}/get-messages?ticket=${encodeURIComponent(ticket)}`, {}, null);

describe("tickets: short-lived, single-thread credentials for URLs", () => {
  it("open the thread's WebSocket and history for about a minute, and the agent never sees a credential", async () => {
    const { threadId, apiKey } = await newThread();
    const { res, body } = await ticketFor(threadId, apiKey);
    expect(res.status).toBe(201);
    expect(body.ticket).toMatch(/^tkt_[0-9a-f]{32}_\d{10}_[\w-]{43}$/);
    const ttl = (Date.parse(body.expiresAt) - Date.now()) / 1000;
    expect(ttl).toBeGreaterThan(30);
    expect(ttl).toBeLessThanOrEqual(61);
    const client = await ChatClient.open(`/agents/thread-agent/${threadId}?ticket=${body.ticket}&_pk=tab-1`);
    expect((await client.response(client.sendChat("hello by ticket").requestId)).text).toBe("Echo: hello by ticket");
    expect(((await (await messages(threadId, body.ticket)).json()) as unknown[]).length).toBe(2);
    const uris = await runInDurableObject(threadAgent(threadId), (agent: ThreadAgent) => [...agent.getConnections()].map((c) => c.uri));
    client.close();
    expect(uris).toHaveLength(1);
    expect(uris[0]).not.toMatch(/ticket|token|tkt_|tl_/);
    expect(uris[0]).toContain("_pk=tab-1");
  });

  it("refuse another thread, a tampered or expired ticket, another user's thread, and the admin", async () => {
    const mine = await newThread();
    const theirs = await newThread();
    const second = await fetchApp("/api/v1/threads", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }, mine.apiKey);
    const otherOfMine = ((await second.json()) as { thread: { id: string } }).thread.id;
    const { body } = await ticketFor(mine.threadId, mine.apiKey);
    // One thread only.
    expect((await messages(otherOfMine, body.ticket)).status).toBe(401);
    expect((await upgrade(`/agents/thread-agent/${otherOfMine}?ticket=${body.ticket}`)).status).toBe(401);
    // Tampered: one character of the signature, or the expiry pushed out.
    const sig = body.ticket.slice(-43);
    const flipped = body.ticket.slice(0, -43) + (sig[0] === "A" ? "B" : "A") + sig.slice(1);
    expect((await messages(mine.threadId, flipped)).status).toBe(401);
    const later = body.ticket.replace(/_(\d{10})_/, (_, s: string) => `_${Number(s) + 3600}_`);
    expect((await messages(mine.threadId, later)).status).toBe(401);
    // Expired: signed with the user's real secret, an hour ago.
    const authority = env.UserAuthority.get(env.UserAuthority.idFromName(mine.userId));
    const expired = await runInDurableObject(authority, async (_a: UserAuthority, state) => {
      const secret = (await state.storage.get<Uint8Array>("ticket-secret"))!;
      const keyHash = (await state.storage.get<{ keys: string[] }>("identity"))!.keys[0]!;
      return signTicket(secret, { userId: mine.userId, threadId: mine.threadId, keyHash, expiresAt: Math.floor(Date.now() / 1000) - 3600 });
    });
    expect((await messages(mine.threadId, expired)).status).toBe(401);
    // No ticket for a thread that is not yours (the same 404 as one that does not exist), none for the admin.
    expect((await ticketFor(theirs.threadId, mine.apiKey)).res.status).toBe(404);
    expect((await ticketFor(crypto.randomUUID(), mine.apiKey)).res.status).toBe(404);
    expect((await ticketFor(mine.threadId, "test-admin-token-0123456789")).res.status).toBe(403);
    // A ticket of theirs is no key to mine.
    const theirTicket = (await ticketFor(theirs.threadId, theirs.apiKey)).body.ticket;
    expect((await messages(mine.threadId, theirTicket)).status).toBe(401);
    expect((await messages(mine.threadId, body.ticket)).status).toBe(200);
  });

  it("die with the key they were issued with", async () => {
    const { threadId, apiKey } = await newThread();
    const { body } = await ticketFor(threadId, apiKey);
    const rotated = ((await (await fetchApp("/api/v1/users/me/api-key", { method: "POST" }, apiKey)).json()) as { apiKey: string }).apiKey;
    expect((await messages(threadId, body.ticket)).status).toBe(401);
    expect((await messages(threadId, (await ticketFor(threadId, rotated)).body.ticket)).status).toBe(200);
  });
});
