import { describe, expect, it, vi } from "vitest";
import { TtlCache } from "../src/cache/ttl-cache.ts";
import { getConfig } from "../src/config.ts";
import { defaultFlags, FLAG_NAMES, parseFlagValue, resolveFlags, type Override } from "../src/flags/definitions.ts";

const config = getConfig({ CHAT_MODEL: "fake-model", TURN_RATE_LIMIT: "8", TURN_RATE_WINDOW_SECONDS: "60" } as unknown as Env);
const row = (flag: string, value: unknown, scope: { userId?: string; threadId?: string } = {}): Override => ({
  flag,
  value,
  userId: scope.userId ?? null,
  threadId: scope.threadId ?? null,
});

describe("resolveFlags", () => {
  it("takes defaults from configuration, each fitting its flag's own type", () => {
    const d = defaultFlags(config);
    expect(d).toMatchObject({
      hybrid_search: true,
      chat_model: "fake-model",
      offline_model_allowed: true,
      turn_rate_limit: 8,
      turn_rate_window_seconds: 60,
      log_message_content: false,
    });
    expect(d).toMatchObject({ search_rate_limit: config.SEARCH_RATE_LIMIT, turn_max_output_tokens: config.TURN_MAX_OUTPUT_TOKENS, approval_save_note: "always" });
    expect(Object.keys(d).sort()).toEqual([...FLAG_NAMES].sort());
    for (const name of FLAG_NAMES) expect(parseFlagValue(name, d[name]).success, name).toBe(true);
  });

  it("resolves thread over user over global over default, whatever order the rows come in", () => {
    const rows = [
      row("turn_rate_limit", 5),
      row("turn_rate_limit", 4, { threadId: "t" }),
      row("turn_rate_limit", 3, { userId: "u" }),
      row("chat_model", "g"),
      row("chat_model", "u", { userId: "u" }),
    ];
    for (const order of [rows, [...rows].reverse()]) {
      const r = resolveFlags(config, order);
      expect(r.turn_rate_limit).toEqual({ value: 4, source: "thread" });
      expect(r.chat_model).toEqual({ value: "u", source: "user" });
      expect(r.hybrid_search).toEqual({ value: true, source: "default" });
    }
    expect(resolveFlags(config, [row("log_message_content", true)]).log_message_content).toEqual({ value: true, source: "global" });
  });

  it("skips values that do not fit their flag (reporting them) and unknown flags, so the next level applies", () => {
    const invalid = vi.fn();
    const r = resolveFlags(
      config,
      [row("turn_rate_limit", 6), row("turn_rate_limit", -1, { userId: "u" }), row("hybrid_search", "no", { threadId: "t" }), row("gone", 1)],
      invalid,
    );
    expect(r.turn_rate_limit).toEqual({ value: 6, source: "global" });
    expect(r.hybrid_search).toEqual({ value: true, source: "default" });
    expect(r).not.toHaveProperty("gone");
    expect(invalid.mock.calls.map(([o]) => o.flag).sort()).toEqual(["hybrid_search", "turn_rate_limit"]);
  });
});

describe("TtlCache", () => {
  const clock = () => {
    let t = 1_000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };
  const fail = () => Promise.reject(new Error("database unavailable"));

  it("loads a key once, serves it for its TTL, then serves it stale while one background load refreshes it", async () => {
    const c = clock();
    const cache = new TtlCache<number>(10, c.now);
    let loads = 0;
    const load = vi.fn(async () => ++loads);
    expect(await cache.get("k", 1000, load, () => -1)).toBe(1);
    c.advance(999);
    expect(await cache.get("k", 1000, load, () => -1)).toBe(1);
    expect(load).toHaveBeenCalledTimes(1);
    c.advance(1);
    // Expired: the read does not wait; two reads start one refresh.
    expect(await cache.get("k", 1000, load, () => -1)).toBe(1);
    expect(await cache.get("k", 1000, load, () => -1)).toBe(1);
    await cache.idle();
    expect(load).toHaveBeenCalledTimes(2);
    expect(await cache.get("k", 1000, load, () => -1)).toBe(2);
    expect(await cache.get("other", 1000, load, () => -1)).toBe(3);
    cache.clear();
    expect(await cache.get("k", 1000, load, () => -1)).toBe(4);
  });

  it("when a load fails, answers the fallback given the last value, and keeps that for a TTL rather than retrying every read", async () => {
    const c = clock();
    const cache = new TtlCache<string>(10, c.now);
    const fallback = vi.fn((_err: unknown, stale: string | undefined) => stale ?? "defaults");
    expect(await cache.get("new", 1000, fail, fallback)).toBe("defaults");
    expect(await cache.get("k", 1000, async () => "fresh", fallback)).toBe("fresh");
    c.advance(1000);
    const failing = vi.fn(fail);
    expect(await cache.get("k", 1000, failing, fallback)).toBe("fresh");
    await cache.idle();
    expect(fallback).toHaveBeenLastCalledWith(expect.any(Error), "fresh");
    expect(await cache.get("k", 1000, failing, fallback)).toBe("fresh");
    expect(failing).toHaveBeenCalledTimes(1);
    c.advance(1000);
    expect(await cache.get("k", 1000, async () => "recovered", fallback)).toBe("fresh");
    await cache.idle();
    expect(await cache.get("k", 1000, fail, fallback)).toBe("recovered");
  });

  it("holds at most maxEntries keys, dropping the one refreshed longest ago", async () => {
    const c = clock();
    const cache = new TtlCache<string>(2, c.now);
    const load = (v: string) => async () => v;
    await cache.get("a", 1000, load("a1"), () => "");
    await cache.get("b", 1000, load("b1"), () => "");
    c.advance(1000);
    await cache.get("a", 1000, load("a2"), () => ""); // refreshed: now the newest
    await cache.idle();
    await cache.get("c", 1000, load("c1"), () => "");
    expect(cache.size).toBe(2);
    expect(await cache.get("a", 1000, load("a3"), () => "")).toBe("a2");
    expect(await cache.get("b", 1000, load("b2"), () => "")).toBe("b2");
  });
});
