import { describe, expect, it } from "vitest";
import { KvVersion, MIN_WRITE_INTERVAL_MS, turnVersions, type Cache } from "../src/search/cache.ts";

/** Virtual time: sleeping moves it on at once, so the throttle's waits cost nothing here. */
function clock() {
  const c = { t: 0, now: () => c.t, sleep: async (ms: number) => void (c.t += ms) };
  return c;
}

/** A KV that enforces Workers KV's limit: a second write to a key within a second is refused (429). */
function limitedKv(now: () => number) {
  const values = new Map<string, string>();
  const last = new Map<string, number>();
  const log = { puts: [] as { key: string; at: number }[], refused: 0 };
  const kv = {
    get: async (key: string) => values.get(key) ?? null,
    put: async (key: string, value: string) => {
      if (now() - (last.get(key) ?? -Infinity) < 1000) {
        log.refused++;
        throw new Error("KV PUT failed: 429 Too Many Requests");
      }
      last.set(key, now());
      values.set(key, value);
      log.puts.push({ key, at: now() });
    },
  } as unknown as Cache;
  return { kv, log, values };
}

describe("a scope's cache version in KV", () => {
  it("takes a burst of bumps as a write or two, never two writes to the key within a second, and every bump lands", async () => {
    const c = clock();
    const { kv, log, values } = limitedKv(c.now);
    const v = new KvVersion(kv, "search:version:global", c);
    const seen: string[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        await v.bump();
        seen.push(values.get("search:version:global")!);
      }),
    );
    expect(log.refused).toBe(0);
    expect(log.puts.length).toBeLessThanOrEqual(2);
    // The value KV holds once every bump has resolved is the last one bumped, which this isolate reads at once.
    expect(values.get("search:version:global")).toBe(await v.read());
    expect(new Set(seen).size).toBeLessThanOrEqual(2);
  });

  it("spaces a steady stream of bumps MIN_WRITE_INTERVAL_MS apart", async () => {
    const c = clock();
    const { kv, log } = limitedKv(c.now);
    const v = new KvVersion(kv, "k", c);
    for (let i = 0; i < 40; i++) {
      void v.bump();
      c.t += 100;
    }
    await v.bump();
    const gaps = log.puts.slice(1).map((p, i) => p.at - log.puts[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(MIN_WRITE_INTERVAL_MS);
    expect(log.puts.length).toBeLessThanOrEqual(Math.ceil(4000 / MIN_WRITE_INTERVAL_MS) + 1);
    expect(log.refused).toBe(0);
  });

  it("a write another isolate's write refused is tried again later and lands; a failing KV is logged, never thrown", async () => {
    const c = clock();
    const { kv, log, values } = limitedKv(c.now);
    const mine = new KvVersion(kv, "k", c);
    const theirs = new KvVersion(kv, "k", c);
    await theirs.bump();
    await mine.bump();
    expect(log.refused).toBe(1);
    expect(values.get("k")).toBe(await mine.read());
    expect(log.puts.length).toBe(2);

    const broken = { get: async () => null, put: async () => Promise.reject(new Error("KV down")) } as unknown as Cache;
    await expect(new KvVersion(broken, "k", c).bump()).resolves.toBeUndefined();
    expect(await new KvVersion(broken, "k", c).read()).toBe("0");
  });
});

describe("a turn's cache versions", () => {
  const authority = () => {
    const reads: string[] = [];
    const bumps: string[] = [];
    const versions = { read: async (s: string) => (reads.push(s), `${s}@authority`), bump: async (s: string) => void bumps.push(s) };
    return { versions, reads, bumps };
  };

  it("read the version of the owner's documents the admission brought, without asking; every other scope's is asked for", async () => {
    const a = authority();
    const v = turnVersions("user:u", Promise.resolve(7), a.versions);
    expect(await v.read("user:u")).toBe("7");
    expect(await v.read("user:u")).toBe("7");
    expect(await v.read("global")).toBe("global@authority");
    expect(await v.read("user:v")).toBe("user:v@authority");
    expect(a.reads).toEqual(["global", "user:v"]);
  });

  it("ask once the turn changed what search reads itself, and when the admission brought none", async () => {
    const a = authority();
    const v = turnVersions("user:u", Promise.resolve(7), a.versions);
    await v.bump("user:v");
    expect(await v.read("user:u")).toBe("7");
    await v.bump("user:u");
    expect(a.bumps).toEqual(["user:v", "user:u"]);
    expect(await v.read("user:u")).toBe("user:u@authority");
    const failed = turnVersions("user:u", Promise.resolve(undefined), a.versions);
    expect(await failed.read("user:u")).toBe("user:u@authority");
  });

  it("a bump while a read waits for the admission's version sends that read to the authority too", async () => {
    const a = authority();
    let answer!: (v: number) => void;
    const v = turnVersions("user:u", new Promise<number>((r) => (answer = r)), a.versions);
    const read = v.read("user:u");
    await v.bump("user:u");
    answer(7);
    expect(await read).toBe("user:u@authority");
  });
});
