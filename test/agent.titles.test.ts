import { runInDurableObject } from "cloudflare:test";
import { userAuthority } from "../src/authority/client.ts";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { eq } from "drizzle-orm";
import { withDb } from "../src/db/client.ts";
import { spendLedger } from "../src/db/schema.ts";
import { env } from "./support/env.ts";
import { ChatClient, eventually, fetchApp, httpTurn, sendJson, threadsForEachTest, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();

const titleOf = async (threadId: string, key: string) =>
  ((await (await fetchApp(`/api/v1/threads/${threadId}`, {}, key)).json()) as { thread: { title: string | null } }).thread.title;
/** The agent has settled its thread's title (written one, or found the owner's): nothing later will change it on its own. */
const titled = (threadId: string) =>
  eventually(
    () => runInDurableObject(threadAgent(threadId), (_a: ThreadAgent, state) => state.storage.get<boolean>("tl_title_done")),
    (done) => done === true,
  );
const titleFrames = (c: ChatClient) => c.frames.filter((f) => f.type === "thread_title");

describe("thread titles", () => {
  it("over WebSocket: after the first exchange an untitled thread gets a short plain title, sent to every client on it", async () => {
    const t = await newThread();
    const a = await ChatClient.connect(t.threadId, t.apiKey);
    const b = await ChatClient.connect(t.threadId, t.apiKey);
    await a.response(a.sendChat("Tidal energy basics, explained simply please").requestId);
    const frame = await b.waitFor((f) => f.type === "thread_title");
    // The fake model answers `**Title:** "<first four words>"` and a chatty line: markdown, label, quotes and the rest go.
    expect(frame).toEqual({ type: "thread_title", threadId: t.threadId, title: "Tidal energy basics, explained" });
    await a.waitFor((f) => f.type === "thread_title");
    expect(await titleOf(t.threadId, t.apiKey)).toBe("Tidal energy basics, explained");
    // Once: later turns leave it alone.
    await a.response(a.sendChat("And tides in winter?").requestId);
    await titled(t.threadId);
    expect(titleFrames(a).length).toBe(1);
    a.close();
    b.close();
  });

  it("over HTTP: the turn's thread is titled and a client watching it is told", async () => {
    const t = await newThread();
    const watcher = await ChatClient.connect(t.threadId, t.apiKey);
    expect((await httpTurn(t.threadId, "Espresso dosing for a double shot", t.apiKey)).status).toBe(200);
    expect(await watcher.waitFor((f) => f.type === "thread_title")).toMatchObject({ title: "Espresso dosing for a" });
    const list = (await (await fetchApp("/api/v1/threads", {}, t.apiKey)).json()) as { items: { id: string; title: string }[] };
    expect(list.items.find((i) => i.id === t.threadId)?.title).toBe("Espresso dosing for a");
    // The title's model call is charged to the owner like any other, and is not a turn.
    const entries = await eventually(
      async () => (await userAuthority(env, t.userId).flushLedger(), withDb(env, (db) => db.select().from(spendLedger).where(eq(spendLedger.userId, t.userId)))),
      (e) => e.length === 2,
    );
    expect(entries.map((e) => e.kind).sort()).toEqual(["title", "turn"]);
    const usage = (await (await fetchApp("/api/v1/users/me/usage", {}, t.apiKey)).json()) as { usage: { turns: number; totalTokens: number } };
    expect(usage.usage.turns).toBe(1);
    expect(usage.usage.totalTokens).toBe(entries.reduce((n, e) => n + e.inputTokens + e.outputTokens, 0));
    watcher.close();
  });

  it("the owner's title always wins: one given before the first exchange is kept, and no title is written", async () => {
    const t = await newThread("My own title");
    const watcher = await ChatClient.connect(t.threadId, t.apiKey);
    expect((await httpTurn(t.threadId, "Something to title", t.apiKey)).status).toBe(200);
    await titled(t.threadId);
    expect(await titleOf(t.threadId, t.apiKey)).toBe("My own title");
    expect(titleFrames(watcher)).toEqual([]);
    // Renamed to nothing is the owner's choice too.
    const u = await newThread();
    expect((await sendJson("PATCH", `/api/v1/threads/${u.threadId}`, { title: null }, u.apiKey)).status).toBe(200);
    expect((await httpTurn(u.threadId, "Still untitled on purpose", u.apiKey)).status).toBe(200);
    await titled(u.threadId);
    expect(await titleOf(u.threadId, u.apiKey)).toBeNull();
    watcher.close();
  });

  it("the owner's rename always wins: one made while the title is being written, or after it, is never overwritten", async () => {
    const t = await newThread();
    // The fake model writes this thread's title slowly: the rename lands while it does.
    expect((await httpTurn(t.threadId, "[slow] harbour tides and ferries", t.apiKey)).status).toBe(200);
    expect((await sendJson("PATCH", `/api/v1/threads/${t.threadId}`, { title: "Renamed meanwhile" }, t.apiKey)).status).toBe(200);
    await titled(t.threadId);
    expect(await titleOf(t.threadId, t.apiKey)).toBe("Renamed meanwhile");

    const u = await newThread();
    const watcher = await ChatClient.connect(u.threadId, u.apiKey);
    expect((await httpTurn(u.threadId, "Lisbon trip in May", u.apiKey)).status).toBe(200);
    await watcher.waitFor((f) => f.type === "thread_title");
    expect((await sendJson("PATCH", `/api/v1/threads/${u.threadId}`, { title: "Trip" }, u.apiKey)).status).toBe(200);
    expect((await httpTurn(u.threadId, "And in June?", u.apiKey)).status).toBe(200);
    await titled(u.threadId);
    expect(await titleOf(u.threadId, u.apiKey)).toBe("Trip");
    expect(titleFrames(watcher).length).toBe(1);
    watcher.close();
  });
});
