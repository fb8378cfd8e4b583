import { env } from "./support/env.ts";
import { describe, expect, it } from "vitest";
import { withDb } from "../src/db/client.ts";
import { eq } from "drizzle-orm";
import { applyMessageOps, listMessages, type MessageOp } from "../src/db/messages.ts";
import { EMBEDDING_DIMENSIONS, messageChunks, messageCorpus, messageIndexQueue } from "../src/db/schema.ts";
import { offlineEmbedder } from "../src/search/embeddings.ts";
import { searchDeps } from "../src/search/deps.ts";
import { indexThreadMessages } from "../src/search/message-index.ts";
import { toAppError } from "../src/errors.ts";
import { threadsForEachTest, messageRows } from "./support/helpers.ts";

const newThread = threadsForEachTest();

async function thread() {
  const t = await newThread();
  return t.threadId;
}

const text = (id: string, role: "user" | "assistant", t: string): MessageOp => ({ op: "upsert", message: { id, role, parts: [{ type: "text", text: t }] } });
const apply = (threadId: string, ops: MessageOp[]) => withDb(env, (db) => applyMessageOps(db, threadId, ops));

/** Indexes what the thread's queue holds, as the agent's indexer does (vectors of the offline embedder). */
const indexQueued = (threadId: string) => indexThreadMessages({ ...searchDeps(env), embedder: offlineEmbedder(EMBEDDING_DIMENSIONS) }, threadId);
const indexRows = (threadId: string) =>
  withDb(env, async (db) => ({
    chunks: (await db.select({ id: messageChunks.messageId, text: messageChunks.text }).from(messageChunks).where(eq(messageChunks.threadId, threadId)))
      .map((c) => `${c.id}: ${c.text}`)
      .sort(),
    queued: (await db.select().from(messageIndexQueue).where(eq(messageIndexQueue.threadId, threadId))).length,
  }));

describe("writing a thread's messages", () => {
  it("queues a batch's messages for indexing in its transaction, in op order: one written twice is indexed with its last text, a deleted one not at all", async () => {
    const { threadId, userId } = await newThread();
    expect(await apply(threadId, [text("m1", "user", "Tides at dawn.")])).toMatchObject({ queued: true, title: null });
    expect(await indexQueued(threadId)).toBe(1);
    expect(await indexRows(threadId)).toEqual({ chunks: ["m1: Tides at dawn."], queued: 0 });
    expect(
      await apply(threadId, [
        text("m1", "user", "Tides at dusk."),
        text("m2", "assistant", "Gone soon."),
        { op: "delete", ids: ["m2"] },
        text("m3", "assistant", "First draft."),
        text("m3", "assistant", "Final answer."),
      ]),
    ).toMatchObject({ queued: true });
    // Until its run, search has a message's last indexed text.
    expect(await indexRows(threadId)).toEqual({ chunks: ["m1: Tides at dawn."], queued: 2 });
    expect(await indexQueued(threadId)).toBe(2);
    expect(await indexRows(threadId)).toEqual({ chunks: ["m1: Tides at dusk.", "m3: Final answer."], queued: 0 });
    // The owner's statistics follow: one chunk per live message; a delete takes a message out of the index at once.
    const corpus = () => withDb(env, (db) => db.select().from(messageCorpus).where(eq(messageCorpus.ownerId, userId)));
    expect((await corpus())[0]?.chunks).toBe(2);
    expect(await apply(threadId, [{ op: "delete", ids: ["m3"] }])).toMatchObject({ queued: false });
    expect(await indexRows(threadId)).toEqual({ chunks: ["m1: Tides at dusk."], queued: 0 });
    expect((await corpus())[0]?.chunks).toBe(1);
  });

  it("is idempotent: replaying a batch rewrites rows in place and keeps their order", async () => {
    const threadId = await thread();
    const batch = [text("m1", "user", "hi"), text("m2", "assistant", "hello")];
    await apply(threadId, batch);
    const before = await messageRows(threadId);
    await apply(threadId, batch);
    await apply(threadId, [text("m1", "user", "hi (edited)")]);
    const after = await messageRows(threadId);
    expect(after.map((r) => [r.id, r.seq])).toEqual(before.map((r) => [r.id, r.seq]));
    expect(after[0]!.parts).toEqual([{ type: "text", text: "hi (edited)" }]);
  });

  it("applies deletes and clears in order", async () => {
    const threadId = await thread();
    await apply(threadId, [text("a", "user", "1"), text("b", "assistant", "2"), { op: "delete", ids: ["a"] }, text("c", "user", "3")]);
    expect((await messageRows(threadId)).map((r) => r.id)).toEqual(["b", "c"]);
    await apply(threadId, [{ op: "clear" }, text("d", "user", "4")]);
    expect((await messageRows(threadId)).map((r) => r.id)).toEqual(["d"]);
  });

  it("keeps the same message id in two threads apart", async () => {
    const [t1, t2] = await Promise.all([thread(), thread()]);
    await apply(t1, [text("same", "user", "one")]);
    await apply(t2, [text("same", "user", "two")]);
    expect((await messageRows(t1))[0]!.parts).toEqual([{ type: "text", text: "one" }]);
    expect((await messageRows(t2))[0]!.parts).toEqual([{ type: "text", text: "two" }]);
  });

  it("maps a write to a missing thread to thread_not_found and writes nothing", async () => {
    const missing = crypto.randomUUID();
    const err = await apply(missing, [text("x", "user", "lost")]).catch((e) => e);
    expect(toAppError(err).code).toBe("thread_not_found");
    expect(await messageRows(missing)).toEqual([]);
  });

  it("pages from the newest messages back, each page oldest first", async () => {
    const threadId = await thread();
    await apply(
      threadId,
      Array.from({ length: 5 }, (_, i) => text(`p${i}`, i % 2 ? "assistant" : "user", String(i))),
    );
    const first = await withDb(env, (db) => listMessages(db, threadId, { limit: 2 }));
    expect(first.messages.map((m) => m.id)).toEqual(["p3", "p4"]);
    const second = await withDb(env, (db) => listMessages(db, threadId, { limit: 2, cursor: Number(first.nextCursor) }));
    expect(second.messages.map((m) => m.id)).toEqual(["p1", "p2"]);
    const last = await withDb(env, (db) => listMessages(db, threadId, { limit: 2, cursor: Number(second.nextCursor) }));
    expect(last).toMatchObject({ messages: [{ id: "p0" }], nextCursor: null });
  });
});
