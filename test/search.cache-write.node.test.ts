import { describe, expect, it } from "vitest";
import { getConfig } from "../src/config.ts";
import type { Cache } from "../src/search/cache.ts";
import { search, type SearchDeps } from "../src/search/search.ts";

/** A KV whose writes land only when the test says so. */
function heldKv() {
  const values = new Map<string, string>();
  const held: (() => void)[] = [];
  const kv = {
    get: async (key: string) => (values.has(key) ? JSON.parse(values.get(key)!) : null),
    put: (key: string, value: string) => new Promise<void>((done) => held.push(() => (values.set(key, value), done()))),
  } as unknown as Cache;
  return {
    kv,
    land: () => {
      for (const f of held.splice(0)) f();
    },
    writes: () => held.length,
  };
}

function deps(kv: Cache, background?: SearchDeps["background"]) {
  const d = { computed: 0 };
  const searchDeps: SearchDeps = {
    // The stand-in for Postgres: no rows, and a count of the searches that reached it.
    db: (async () => (d.computed++, [])) as SearchDeps["db"],
    cache: kv,
    versions: { read: async () => "1", bump: async () => {} },
    embedder: { name: "test", fusionWeight: 1, embed: async () => [] } as unknown as SearchDeps["embedder"],
    config: getConfig({} as Env),
    background,
  };
  return Object.assign(d, { searchDeps });
}

const req = (query: string) => ({ query, limit: 5, mode: "lexical" as const, scope: { ownerId: "u" } });

describe("the search cache's write", () => {
  it("in the background, the answer does not wait for it; the same search, once it lands, finds it", async () => {
    const { kv, land, writes } = heldKv();
    const backgrounded: Promise<unknown>[] = [];
    const d = deps(kv, (w) => backgrounded.push(w));
    expect(await search(d.searchDeps, req("espresso care"))).toMatchObject({ cached: false });
    expect([writes(), backgrounded.length]).toEqual([1, 1]);
    const again = search(d.searchDeps, req("Espresso  care"));
    land();
    expect(await again).toMatchObject({ cached: true });
    expect(d.computed).toBe(1);
  });

  it("without a background, the answer waits for its write", async () => {
    const { kv, land, writes } = heldKv();
    const d = deps(kv);
    let first: { cached: boolean } | undefined;
    const done = search(d.searchDeps, req("tide tables")).then((r) => (first = r));
    await expect.poll(writes).toBe(1);
    expect(first).toBeUndefined();
    land();
    await done;
    expect(first).toMatchObject({ cached: false });
  });
});
