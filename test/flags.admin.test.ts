import { env } from "./support/env.ts";
import { and, eq, isNull, or } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { FLAG_NAMES, parseFlagValue } from "../src/flags/definitions.ts";
import { withDb } from "../src/db/client.ts";
import { flagOverrides } from "../src/db/schema.ts";
import { fetchApp, postJson, sendJson, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();

const put = (path: string, value: unknown, token?: string) => sendJson("PUT", `/api/v1/admin${path}`, { value }, token);
const del = (path: string, token?: string) => fetchApp(`/api/v1/admin${path}`, { method: "DELETE" }, token);
const get = (path: string, token?: string) => fetchApp(`/api/v1/admin${path}`, {}, token);
const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

type ScopeFlags = { overrides: Record<string, unknown>; resolved: Record<string, { value: unknown; source: string }> };
const view = async (path: string) => {
  const res = await get(path);
  expect(res.status).toBe(200);
  return (await res.json()) as ScopeFlags;
};
const overrideRows = (ids: { userId?: string; threadId?: string }) =>
  withDb(env, (db) =>
    db
      .select()
      .from(flagOverrides)
      .where(or(eq(flagOverrides.userId, ids.userId ?? crypto.randomUUID()), eq(flagOverrides.threadId, ids.threadId ?? crypto.randomUUID()))),
  );

describe("admin flag routes", () => {
  it("are the admin's alone: 401 without a token, 403 for a user", async () => {
    const { userId, apiKey } = await newThread();
    expect((await fetchApp("/api/v1/admin/flags", {}, null)).status).toBe(401);
    const asUser = await get("/flags", apiKey);
    expect(asUser.status).toBe(403);
    expect(await code(asUser)).toBe("forbidden");
    expect((await put(`/users/${userId}/flags/turn_rate_limit`, 1000, apiKey)).status).toBe(403);
    expect((await del(`/users/${userId}/flags/turn_rate_limit`, apiKey)).status).toBe(403);
    expect(await overrideRows({ userId })).toEqual([]);
  });

  it("lists every flag with its description and its default from configuration", async () => {
    const res = await get("/flags");
    expect(res.status).toBe(200);
    const { flags } = (await res.json()) as { flags: { name: string; description: string; default: unknown; global: unknown }[] };
    const byName = Object.fromEntries(flags.map((f) => [f.name, f]));
    // Every flag the code defines, each with a description and a default that fits its own type.
    expect(Object.keys(byName).sort()).toEqual([...FLAG_NAMES].sort());
    for (const name of FLAG_NAMES) {
      expect(byName[name]!.description.length, name).toBeGreaterThan(10);
      expect(parseFlagValue(name, byName[name]!.default).success, name).toBe(true);
    }
    // The test projects configure CHAT_MODEL=fake-model and TURN_RATE_LIMIT=8.
    expect(byName.chat_model).toMatchObject({ default: "fake-model", description: expect.any(String) });
    expect(byName.turn_rate_limit!.default).toBe(8);
    expect(byName.hybrid_search!.default).toBe(true);
    expect(byName.log_message_content!.default).toBe(false);
  });

  it("refuses unknown flags (404), values of the wrong type or range (422), unknown users and threads (404)", async () => {
    const { userId, threadId } = await newThread();
    const unknown = await put(`/users/${userId}/flags/warp_drive`, true);
    expect(unknown.status).toBe(404);
    expect(await code(unknown)).toBe("flag_not_found");
    expect(await code(await del("/flags/warp_drive"))).toBe("flag_not_found");
    for (const [flag, value] of [
      ["turn_rate_limit", 0],
      ["turn_rate_limit", 2.5],
      ["turn_rate_limit", "2"],
      ["hybrid_search", "yes"],
      ["chat_model", ""],
      ["chat_model", "a model; drop table"],
      ["turn_rate_window_seconds", 86_401],
    ] as const) {
      const res = await put(`/threads/${threadId}/flags/${flag}`, value);
      expect(res.status, `${flag}=${JSON.stringify(value)}`).toBe(422);
      expect(await code(res)).toBe("validation_failed");
    }
    // The body itself: no value, extra keys, not JSON.
    expect((await sendJson("PUT", `/api/v1/admin/users/${userId}/flags/hybrid_search`, {})).status).toBe(422);
    expect((await sendJson("PUT", `/api/v1/admin/users/${userId}/flags/hybrid_search`, { value: true, scope: "all" })).status).toBe(422);
    expect((await fetchApp(`/api/v1/admin/users/${userId}/flags/hybrid_search`, { method: "PUT", headers: { "content-type": "application/json" }, body: "{" })).status).toBe(400);
    expect(await overrideRows({ userId, threadId })).toEqual([]);

    const ghost = crypto.randomUUID();
    expect(await code(await put(`/users/${ghost}/flags/hybrid_search`, false))).toBe("user_not_found");
    expect(await code(await put(`/users/not-a-uuid/flags/hybrid_search`, false))).toBe("user_not_found");
    expect(await code(await get(`/users/${ghost}/flags`))).toBe("user_not_found");
    expect(await code(await put(`/threads/${ghost}/flags/hybrid_search`, false))).toBe("thread_not_found");
    expect(await code(await get(`/threads/${ghost}/flags`))).toBe("thread_not_found");
    // Clearing an override that is not there.
    const none = await del(`/users/${userId}/flags/hybrid_search`);
    expect(none.status).toBe(404);
    expect(await code(none)).toBe("not_found");
  });

  it("sets, replaces and clears overrides per user and per thread, resolving thread over user over default", async () => {
    const { userId, apiKey, threadId } = await newThread();
    const other = ((await (await postJson("/api/v1/threads", {}, apiKey)).json()) as { thread: { id: string } }).thread.id;

    const set = await put(`/users/${userId}/flags/turn_rate_limit`, 3);
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ flag: "turn_rate_limit", value: 3, scope: "user" });
    // Setting again replaces the value: still one row.
    expect((await put(`/users/${userId}/flags/turn_rate_limit`, 4)).status).toBe(200);
    expect((await put(`/users/${userId}/flags/hybrid_search`, false)).status).toBe(200);
    expect((await put(`/threads/${threadId}/flags/hybrid_search`, true)).status).toBe(200);
    expect((await put(`/threads/${threadId}/flags/chat_model`, " other-model ")).status).toBe(200);

    const user = await view(`/users/${userId}/flags`);
    expect(user.overrides).toEqual({ turn_rate_limit: 4, hybrid_search: false });
    expect(user.resolved).toMatchObject({
      turn_rate_limit: { value: 4, source: "user" },
      hybrid_search: { value: false, source: "user" },
      chat_model: { value: "fake-model", source: "default" },
    });
    const thread = await view(`/threads/${threadId}/flags`);
    // Values are stored as parsed (trimmed).
    expect(thread.overrides).toEqual({ hybrid_search: true, chat_model: "other-model" });
    expect(thread.resolved).toMatchObject({
      turn_rate_limit: { value: 4, source: "user" },
      hybrid_search: { value: true, source: "thread" },
      chat_model: { value: "other-model", source: "thread" },
      offline_model_allowed: { value: true, source: "default" },
    });
    // The user's other thread gets the user's values.
    expect((await view(`/threads/${other}/flags`)).resolved.hybrid_search).toEqual({ value: false, source: "user" });

    expect((await del(`/threads/${threadId}/flags/hybrid_search`)).status).toBe(204);
    expect((await view(`/threads/${threadId}/flags`)).resolved.hybrid_search).toEqual({ value: false, source: "user" });
    expect((await del(`/users/${userId}/flags/hybrid_search`)).status).toBe(204);
    expect((await view(`/threads/${threadId}/flags`)).resolved.hybrid_search).toEqual({ value: true, source: "default" });
    expect((await overrideRows({ userId, threadId })).map((r) => r.flag).sort()).toEqual(["chat_model", "turn_rate_limit"]);
  });

  it("sets and clears global overrides, which users and threads inherit below their own", async () => {
    const { userId, threadId } = await newThread();
    // A global override changes every turn in the shared test database, so this one sets a default's
    // own value (hybrid_search: true), which changes nothing for concurrent tests, and its source shows.
    try {
      expect(await (await put("/flags/hybrid_search", true)).json()).toEqual({ flag: "hybrid_search", value: true, scope: "global" });
      // Setting it again replaces the one global row (NULLS NOT DISTINCT makes it unique).
      expect((await put("/flags/hybrid_search", true)).status).toBe(200);
      const globalRows = await withDb(env, (db) =>
        db
          .select()
          .from(flagOverrides)
          .where(and(eq(flagOverrides.flag, "hybrid_search"), isNull(flagOverrides.userId), isNull(flagOverrides.threadId))),
      );
      expect(globalRows).toHaveLength(1);
      const { flags } = (await (await get("/flags")).json()) as { flags: { name: string; global: unknown }[] };
      expect(flags.find((f) => f.name === "hybrid_search")!.global).toBe(true);
      expect(flags.find((f) => f.name === "chat_model")!.global).toBeNull();
      expect((await view(`/users/${userId}/flags`)).resolved.hybrid_search).toEqual({ value: true, source: "global" });
      expect((await put(`/users/${userId}/flags/hybrid_search`, false)).status).toBe(200);
      expect((await view(`/threads/${threadId}/flags`)).resolved.hybrid_search).toEqual({ value: false, source: "user" });
      expect((await del("/flags/hybrid_search")).status).toBe(204);
      expect((await (await del("/flags/hybrid_search")).json()) as unknown).toMatchObject({ error: { code: "not_found" } });
    } finally {
      await del("/flags/hybrid_search");
    }
    expect((await view(`/users/${userId}/flags`)).resolved.hybrid_search).toEqual({ value: false, source: "user" });
  });

  it("removes a thread's overrides with the thread and a user's with the user", async () => {
    const { userId, apiKey, threadId } = await newThread();
    expect((await put(`/users/${userId}/flags/turn_rate_limit`, 5)).status).toBe(200);
    expect((await put(`/threads/${threadId}/flags/hybrid_search`, false)).status).toBe(200);
    expect(await overrideRows({ userId, threadId })).toHaveLength(2);
    expect((await fetchApp(`/api/v1/threads/${threadId}`, { method: "DELETE" }, apiKey)).status).toBe(204);
    expect((await overrideRows({ userId, threadId })).map((r) => r.flag)).toEqual(["turn_rate_limit"]);
    expect((await fetchApp(`/api/v1/users/${userId}`, { method: "DELETE" })).status).toBe(204);
    expect(await overrideRows({ userId, threadId })).toEqual([]);
  });

  it("ignores a stored value that no longer fits its flag: the next level applies and turns go on", async () => {
    const { userId, apiKey, threadId } = await newThread();
    // As if the flag's schema had changed since the value was written.
    await withDb(env, (db) =>
      db.insert(flagOverrides).values([
        { flag: "turn_rate_limit", userId, value: "lots" },
        { flag: "retired_flag", userId, value: 1 },
      ]),
    );
    const user = await view(`/users/${userId}/flags`);
    expect(user.overrides).toEqual({ turn_rate_limit: "lots", retired_flag: 1 });
    expect(user.resolved.turn_rate_limit).toEqual({ value: 8, source: "default" });
    expect(user.resolved).not.toHaveProperty("retired_flag");
    const turn = await fetchApp(
      `/api/v1/threads/${threadId}/messages`,
      { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify({ text: "still fine" }) },
      apiKey,
    );
    expect(turn.status).toBe(200);
  });

  it("are described in the OpenAPI document", async () => {
    const doc = (await (await fetchApp("/api/v1/openapi.json", {}, null)).json()) as { paths: Record<string, Record<string, unknown>> };
    const ops = Object.entries(doc.paths).flatMap(([path, o]) => Object.keys(o).map((m) => `${m} ${path}`));
    expect(ops).toEqual(
      expect.arrayContaining([
        "get /api/v1/admin/flags",
        "put /api/v1/admin/flags/{flag}",
        "delete /api/v1/admin/flags/{flag}",
        "get /api/v1/admin/users/{userId}/flags",
        "put /api/v1/admin/users/{userId}/flags/{flag}",
        "delete /api/v1/admin/users/{userId}/flags/{flag}",
        "get /api/v1/admin/threads/{threadId}/flags",
        "put /api/v1/admin/threads/{threadId}/flags/{flag}",
        "delete /api/v1/admin/threads/{threadId}/flags/{flag}",
      ]),
    );
  });
});
