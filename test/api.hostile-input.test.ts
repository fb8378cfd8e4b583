import { env } from "./support/env.ts";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { withDb } from "../src/db/client.ts";
import { documents, users } from "../src/db/schema.ts";
import { eventually, fetchApp, httpTurn, messageRows, postJson, sendJson, threadsForEachTest, uniqueEmail } from "./support/helpers.ts";

const newThread = threadsForEachTest();

const UNSTORABLE = ["nul \u0000 here", "lone high \ud800", "lone low \udc00 too"];
const CANNOT_STORE = "text contains a character that cannot be stored (U+0000 or an unpaired surrogate)";

/** A 4xx with the one error body: never a 500. */
async function expectRefused(res: Response | Promise<Response>, status: number, code: string, message?: string | RegExp) {
  const r = await res;
  const body = (await r.json()) as { error: { code: string; message: string } };
  expect(r.status, JSON.stringify(body)).toBe(status);
  expect(body.error.code).toBe(code);
  if (message !== undefined) expect(body.error.message).toMatch(message);
  return body.error.message;
}
const cannotStoreAt = (where: string, path: string) => `invalid ${where}: ${CANNOT_STORE} at ${path}`;
const documentsOf = (ownerId: string) => withDb(env, (db) => db.select().from(documents).where(eq(documents.ownerId, ownerId)));

describe("text Postgres cannot store (NUL, lone surrogates) is refused with 422 where it enters", () => {
  it("in a document's text, title, source, and metadata values and keys, naming the field", async () => {
    const { userId, apiKey } = await newThread();
    for (const bad of UNSTORABLE) {
      const doc = { title: "Fine", text: "Fine text." };
      await expectRefused(postJson("/api/v1/documents", { ...doc, text: bad }, apiKey), 422, "validation_failed", cannotStoreAt("body", "text"));
      await expectRefused(postJson("/api/v1/documents", { ...doc, title: bad }, apiKey), 422, "validation_failed", cannotStoreAt("body", "title"));
      await expectRefused(postJson("/api/v1/documents", { ...doc, source: bad }, apiKey), 422, "validation_failed", cannotStoreAt("body", "source"));
      const batch = { documents: [{ ...doc, metadata: { ok: [1, "fine"], note: bad } }] };
      expect(await expectRefused(postJson("/api/v1/documents", batch, apiKey), 422, "validation_failed")).toBe(cannotStoreAt("body", "documents[0].metadata.note"));
      const key = await expectRefused(postJson("/api/v1/documents", { documents: [doc, { ...doc, metadata: { [bad]: 1 } }] }, apiKey), 422, "validation_failed");
      expect(key).toBe(cannotStoreAt("body", `documents[1].metadata[${JSON.stringify(bad)}]`));
    }
    // The admin's (global) documents go through the same check.
    await expectRefused(postJson("/api/v1/documents", { title: "Global", text: "a\u0000b" }), 422, "validation_failed");
    expect(await documentsOf(userId)).toEqual([]);
    // A valid surrogate pair is ordinary text.
    const emoji = await postJson("/api/v1/documents", { title: "Emoji 😀", text: "Coffee ☕ and 😀.", metadata: { "mood 😀": "😀" } }, apiKey);
    expect(emoji.status).toBe(201);
  });

  it("in a search query, a query parameter's name, and any route's query string", async () => {
    const { apiKey } = await newThread();
    await expectRefused(fetchApp("/api/v1/search?q=coffee%00beans", {}, apiKey), 422, "validation_failed", cannotStoreAt("query", "q"));
    await expectRefused(fetchApp("/api/v1/search?q=coffee&q=%00", {}, apiKey), 422, "validation_failed", cannotStoreAt("query", "q[1]"));
    await expectRefused(fetchApp("/api/v1/users/me?%00=1", {}, apiKey), 422, "validation_failed", /cannot be stored/);
    // A lone surrogate cannot be spelled in UTF-8: its WTF-8 bytes stay literal text, and are searched as such.
    const wtf8 = await fetchApp("/api/v1/search?q=%ED%A0%80&mode=lexical", {}, apiKey);
    expect(wtf8.status).toBe(200);
  });

  it("in a thread's title, on create and on rename", async () => {
    const { apiKey, threadId } = await newThread("Original");
    for (const bad of UNSTORABLE) {
      await expectRefused(postJson("/api/v1/threads", { title: bad }, apiKey), 422, "validation_failed", cannotStoreAt("body", "title"));
      await expectRefused(sendJson("PATCH", `/api/v1/threads/${threadId}`, { title: bad }, apiKey), 422, "validation_failed", cannotStoreAt("body", "title"));
    }
    const list = (await (await fetchApp("/api/v1/threads", {}, apiKey)).json()) as { items: { title: string }[] };
    expect(list.items.map((t) => t.title)).toEqual(["Original"]);
  });

  it("in a user's email and name (admin)", async () => {
    for (const bad of UNSTORABLE) {
      await expectRefused(postJson("/api/v1/users", { email: `a${bad}b@tests.threadline.invalid`.replaceAll(" ", "") }), 422, "validation_failed", /cannot be stored .* at email$/);
      const email = uniqueEmail();
      await expectRefused(postJson("/api/v1/users", { email, name: bad }), 422, "validation_failed", cannotStoreAt("body", "name"));
      expect(await withDb(env, (db) => db.select().from(users).where(eq(users.email, email)))).toEqual([]);
    }
  });

  it("in a chat body, over POST /api/v1/chat and POST /api/v1/threads/:id/messages, and nothing is recorded", async () => {
    const { apiKey, threadId } = await newThread();
    for (const bad of UNSTORABLE) {
      const message = { id: `u-${crypto.randomUUID()}`, role: "user", parts: [{ type: "text", text: bad }] };
      const chat = postJson("/api/v1/chat", { id: threadId, messages: [message], trigger: "submit-message" }, apiKey);
      await expectRefused(chat, 422, "validation_failed", cannotStoreAt("body", "messages[0].parts[0].text"));
      await expectRefused(httpTurn(threadId, bad, apiKey), 422, "validation_failed", cannotStoreAt("body", "text"));
    }
    expect(await messageRows(threadId)).toEqual([]);
    // History before the last message is the client's copy, which the server ignores (and may have streamed
    // before making it storable): it does not refuse the turn, and none of it is kept.
    const earlier = { id: "a-1", role: "assistant", parts: [{ type: "text", text: UNSTORABLE[0] }] };
    const next = { id: `u-${crypto.randomUUID()}`, role: "user", parts: [{ type: "text", text: "fine" }] };
    const history = await postJson("/api/v1/chat", { id: threadId, messages: [earlier, next], trigger: "submit-message" }, apiKey);
    expect(history.status).toBe(200);
    await history.text();
    expect((await messageRows(threadId)).map((r) => r.id)).toEqual([next.id, expect.any(String)]);
  });
});

describe("input out of Postgres's range is a 4xx, not a 500", () => {
  it("a thread-list cursor whose date Postgres cannot hold, or that we never made", async () => {
    const { apiKey } = await newThread();
    const id = crypto.randomUUID();
    for (const at of ["+275760-09-13T00:00:00.000Z", "-271821-04-20T00:00:00.000Z", "+010000-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z", 8.64e15, "not a date", null]) {
      const cursor = encodeURIComponent(btoa(JSON.stringify([at, id])));
      await expectRefused(fetchApp(`/api/v1/threads?cursor=${cursor}`, {}, apiKey), 422, "validation_failed", "invalid cursor");
    }
    const fine = encodeURIComponent(btoa(JSON.stringify(["2999-01-01T00:00:00.000Z", id])));
    expect((await fetchApp(`/api/v1/threads?cursor=${fine}`, {}, apiKey)).status).toBe(200);
  });

  it("metadata nested 30,000 levels deep (a raw body), or past its bounds of 32 levels and 8 KiB", async () => {
    const { userId, apiKey } = await newThread();
    const deep = `{"title":"Deep","text":"Deep.","metadata":{"a":${"[".repeat(30_000)}${"]".repeat(30_000)}}}`;
    expect(deep.length).toBeLessThan(64 * 1024);
    const raw = fetchApp("/api/v1/documents", { method: "POST", headers: { "content-type": "application/json" }, body: deep }, apiKey);
    await expectRefused(raw, 422, "validation_failed", /^invalid body: nested deeper than 64 levels at metadata\.a(\[0\])+$/);
    // The same depth anywhere else in a body, a chat body say.
    const chat = `{"id":"x","messages":[{"id":"m","role":"user","parts":[{"type":"text","text":"hi","x":${"[".repeat(30_000)}${"]".repeat(30_000)}}]}]}`;
    await expectRefused(
      fetchApp("/api/v1/chat", { method: "POST", headers: { "content-type": "application/json" }, body: chat }, apiKey),
      422,
      "validation_failed",
      /nested deeper than 64 levels/,
    );

    let nested: unknown = "leaf";
    for (let i = 0; i < 32; i++) nested = { n: nested };
    await expectRefused(
      postJson("/api/v1/documents", { title: "T", text: "Text.", metadata: { n: nested } }, apiKey),
      422,
      "validation_failed",
      /metadata is nested deeper than 32 levels/,
    );
    const big = { blob: "x".repeat(8 * 1024) };
    await expectRefused(
      postJson("/api/v1/documents", { documents: [{ title: "T", text: "Text.", metadata: big }] }, apiKey),
      422,
      "validation_failed",
      /metadata exceeds 8192 bytes as JSON.*documents\[0\]\.metadata/,
    );
    expect(await documentsOf(userId)).toEqual([]);
    // Within the bounds: stored as sent.
    const ok = await postJson("/api/v1/documents", { title: "T", text: "Text.", metadata: { n: (nested as { n: unknown }).n, blob: "x".repeat(7 * 1024) } }, apiKey);
    expect(ok.status).toBe(201);
  });

  it("numbers too big for their column or parameter", async () => {
    const { apiKey, threadId } = await newThread();
    for (const path of [
      "/api/v1/search?q=x&limit=1e400",
      "/api/v1/search?q=x&limit=99999999999999999999",
      "/api/v1/threads?limit=1e20",
      `/api/v1/threads/${threadId}/messages?cursor=1e20`,
      `/api/v1/threads/${threadId}/messages?cursor=9007199254740993`,
      `/api/v1/threads/${threadId}/messages?limit=-1e400`,
    ])
      await expectRefused(fetchApp(path, {}, apiKey), 422, "validation_failed");
    await expectRefused(fetchApp("/api/v1/admin/stats?hours=1e400"), 422, "validation_failed");
    for (const tokenBudget of [1e19, 2 ** 63, 2 ** 53])
      await expectRefused(postJson("/api/v1/users", { email: uniqueEmail(), tokenBudget }), 422, "validation_failed", /tokenBudget/);
    // The largest cursor a client can send still answers.
    expect((await fetchApp(`/api/v1/threads/${threadId}/messages?cursor=9007199254740991`, {}, apiKey)).status).toBe(200);
  });
});

describe("a thread that was sent what Postgres cannot store", () => {
  it("goes on recording its next message", async () => {
    const { apiKey, threadId } = await newThread();
    for (const bad of UNSTORABLE) {
      await expectRefused(httpTurn(threadId, bad, apiKey), 422, "validation_failed");
      await expectRefused(sendJson("PATCH", `/api/v1/threads/${threadId}`, { title: bad }, apiKey), 422, "validation_failed");
    }
    const turn = await httpTurn(threadId, "an ordinary question", apiKey);
    expect(turn.status).toBe(200);
    const rows = await eventually(
      () => messageRows(threadId),
      (r) => r.length === 2,
    );
    expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
    expect(rows[0]!.parts).toEqual([{ type: "text", text: "an ordinary question" }]);
  });
});
