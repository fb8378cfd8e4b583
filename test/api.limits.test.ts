import { env } from "./support/env.ts";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { withDb } from "../src/db/client.ts";
import { documents } from "../src/db/schema.ts";
import { eventually, fetchApp, postJson, sendJson, threadsForEachTest } from "./support/helpers.ts";
import { uniqueWord } from "./support/search.ts";

const newUser = threadsForEachTest();

/** A user override, set before the user's first search or ingest (so no cached flags stand in the way). */
async function setUserFlag(userId: string, flag: string, value: number) {
  const res = await sendJson("PUT", `/api/v1/admin/users/${userId}/flags/${flag}`, { value });
  expect(res.status, await res.clone().text()).toBe(200);
}
const search = (apiKey: string) => fetchApp(`/api/v1/search?${new URLSearchParams({ q: uniqueWord(), mode: "lexical" })}`, {}, apiKey);
const ingest = (apiKey: string, docs: { title: string; text: string }[]) => postJson("/api/v1/documents", { documents: docs }, apiKey);
const doc = (title = "Note") => ({ title, text: `A short note about ${uniqueWord()}.` });
const documentCount = async (ownerId: string) => (await withDb(env, (db) => db.select().from(documents).where(eq(documents.ownerId, ownerId)))).length;

async function expectError(res: Response, status: number, code: string) {
  const body = (await res.json()) as { error: { code: string; message: string; retryAfter?: number } };
  expect(res.status, JSON.stringify(body)).toBe(status);
  expect(body.error.code).toBe(code);
  return body.error;
}
async function expectRateLimited(res: Response, windowSeconds: number) {
  const error = await expectError(res, 429, "rate_limited");
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(error.retryAfter).toBe(retryAfter);
  return error;
}

describe("rate limits per user", () => {
  it("GET /api/v1/search: 429 with Retry-After past search_api_rate_limit; another user is unaffected", async () => {
    const [alice, bob] = await Promise.all([newUser(), newUser()]);
    for (const u of [alice, bob]) await setUserFlag(u.userId, "search_api_rate_limit", 3);
    for (let i = 0; i < 3; i++) expect((await search(alice.apiKey)).status).toBe(200);
    const error = await expectRateLimited(await search(alice.apiKey), 60);
    expect(error.message).toBe("too many search requests: at most 3 per 60 s");
    for (let i = 0; i < 3; i++) expect((await search(bob.apiKey)).status).toBe(200);
    await expectRateLimited(await search(bob.apiKey), 60);
    // A refused call takes no slot; searches as the admin are not limited.
    await expectRateLimited(await search(alice.apiKey), 60);
    expect((await fetchApp(`/api/v1/search?q=${uniqueWord()}&mode=lexical`)).status).toBe(200);
  });

  it("POST /api/v1/documents: 429 past ingest_rate_limit, counted per request, per user", async () => {
    const [alice, bob] = await Promise.all([newUser(), newUser()]);
    await setUserFlag(alice.userId, "ingest_rate_limit", 2);
    await setUserFlag(alice.userId, "ingest_rate_window_seconds", 30);
    expect((await ingest(alice.apiKey, [doc(), doc(), doc()])).status).toBe(201);
    expect((await ingest(alice.apiKey, [doc()])).status).toBe(201);
    await expectRateLimited(await ingest(alice.apiKey, [doc()]), 30);
    expect(await documentCount(alice.userId)).toBe(4);
    expect((await ingest(bob.apiKey, [doc()])).status).toBe(201);
  });

  it("a raised override lifts a limit", async () => {
    const { userId, apiKey } = await newUser();
    await setUserFlag(userId, "search_api_rate_limit", 1);
    expect((await search(apiKey)).status).toBe(200);
    await expectRateLimited(await search(apiKey), 60);
    await setUserFlag(userId, "search_api_rate_limit", 5);
    // Flags are cached for FLAG_CACHE_SECONDS: the new limit holds once that has passed.
    const res = await eventually(
      () => search(apiKey),
      (r) => r.status === 200,
    );
    expect(res.status).toBe(200);
  });
});

describe("quotas per user", () => {
  it("refuses documents past max_documents_per_user with 422 quota_exceeded, saying the quota and the count", async () => {
    const { userId, apiKey } = await newUser();
    await setUserFlag(userId, "max_documents_per_user", 3);
    expect((await ingest(apiKey, [doc(), doc()])).status).toBe(201);
    const over = await expectError(await ingest(apiKey, [doc(), doc()]), 422, "quota_exceeded");
    expect(over.message).toBe("documents quota exceeded: at most 3 documents per user; you have 2 and this request adds 2");
    expect((await ingest(apiKey, [doc()])).status).toBe(201);
    await expectError(await ingest(apiKey, [doc()]), 422, "quota_exceeded");
    expect(await documentCount(userId)).toBe(3);
    // Deleting a document makes room again.
    const [first] = await withDb(env, (db) => db.select().from(documents).where(eq(documents.ownerId, userId)));
    expect((await fetchApp(`/api/v1/documents/${first!.id}`, { method: "DELETE" }, apiKey)).status).toBe(204);
    expect((await ingest(apiKey, [doc()])).status).toBe(201);
  });

  it("refuses chunks past max_chunks_per_user", async () => {
    const { userId, apiKey } = await newUser();
    await setUserFlag(userId, "max_chunks_per_user", 4);
    const long = { title: "Long", text: Array.from({ length: 250 }, (_, i) => `Sentence ${i} is about ${uniqueWord()} and fills the chunk.`).join(" ") };
    const error = await expectError(await ingest(apiKey, [long]), 422, "quota_exceeded");
    expect(error.message).toMatch(/^chunks quota exceeded: at most 4 chunks per user; you have 0 and this request adds (\d+)$/);
    expect(Number(/adds (\d+)/.exec(error.message)![1])).toBeGreaterThan(4);
    expect((await ingest(apiKey, [doc(), doc(), doc(), doc()])).status).toBe(201);
    await expectError(await ingest(apiKey, [doc()]), 422, "quota_exceeded");
    expect(await documentCount(userId)).toBe(4);
  });

  it("holds under parallel ingests: they cannot together overshoot the quota", async () => {
    const { userId, apiKey } = await newUser();
    await setUserFlag(userId, "max_documents_per_user", 3);
    await setUserFlag(userId, "ingest_rate_limit", 100);
    const statuses = (await Promise.all(Array.from({ length: 8 }, () => ingest(apiKey, [doc()])))).map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(3);
    expect(statuses.filter((s) => s === 422)).toHaveLength(5);
    expect(await documentCount(userId)).toBe(3);
  });
});
