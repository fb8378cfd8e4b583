import { describeError, log } from "../observability/log.ts";

/** The part of a KV namespace the search cache uses; Workers KV in the Worker, anything alike in Node. */
export type Cache = Pick<KVNamespace, "get" | "put">;

/**
 * Cached results are keyed by the version of every scope they read: the global documents, the
 * caller's own documents, and the caller's messages (whose version is their index's own, in
 * Postgres: src/db/message-search.ts). A write publishes a new version of its scope only, after it
 * commits, so one user's upload or message leaves every other user's cache alone, and a message
 * (every turn writes two) leaves the caller's document searches, the agent's tool's, alone.
 */
export type CacheVersions = { read(scope: string): Promise<string>; bump(scope: string): Promise<void> };

export const GLOBAL_SCOPE = "global";

/**
 * A turn's cache versions: the version of its owner's documents (`scope`) as the turn's admission
 * brought it (a call to the authority less on each search's path: 17 to 24 ms of a tool step at 20
 * threads, bench/README.md), until the turn changes them itself (a saved note): from then on, and
 * for every other scope, `versions`. An admission that brought none (its report failed) leaves every read to `versions`.
 */
export function turnVersions(scope: string, admitted: Promise<number | undefined>, versions: CacheVersions): CacheVersions {
  let trusted = true;
  return {
    read: async (s) => {
      const known = s === scope && trusted ? await admitted : undefined;
      return known !== undefined && trusted ? known.toString() : versions.read(s);
    },
    bump: (s) => {
      if (s === scope) trusted = false;
      return versions.bump(s);
    },
  };
}
export const userScope = (ownerId: string) => `user:${ownerId}`;

/** Workers KV takes one write per second to a key; this keeps each isolate's writes to one key further apart. */
export const MIN_WRITE_INTERVAL_MS = 1500;
/** How long an isolate trusts the version it wrote over what KV answers: KV's own propagation time. */
const OWN_WRITE_TRUSTED_MS = 60_000;
const WRITE_ATTEMPTS = 3;

type Batch = { done: Promise<void>; resolve: () => void; tries: number };
const batch = (): Batch => {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return { done, resolve, tries: 0 };
};

/**
 * A scope's version in one KV key, for scopes written rarely (the admin's global documents). Bumps
 * are coalesced: one write carries every bump made before it starts, and writes are spaced
 * MIN_WRITE_INTERVAL_MS apart, so a burst is one write per interval. A random value, not a counter,
 * so writers in other isolates can never publish the same one. The bumping isolate sees its new
 * version at once; a bump resolves when a write carrying it has landed. A refused write (another
 * isolate wrote that second) is tried again a interval later; the last failure is logged, never
 * thrown: the change it announces has committed.
 */
export class KvVersion {
  #own: { value: string; at: number } | undefined;
  #lastWrite = -Infinity;
  #next: Batch | undefined;
  #running = false;

  private readonly kv: Cache;
  private readonly key: string;
  private readonly clock: { now: () => number; sleep: (ms: number) => Promise<unknown> };
  constructor(
    kv: Cache,
    key: string,
    clock: { now: () => number; sleep: (ms: number) => Promise<unknown> } = { now: Date.now, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
  ) {
    this.kv = kv;
    this.key = key;
    this.clock = clock;
  }

  async read(): Promise<string> {
    if (this.#own && this.clock.now() - this.#own.at < OWN_WRITE_TRUSTED_MS) return this.#own.value;
    return (await this.kv.get(this.key)) ?? "0";
  }

  bump(): Promise<void> {
    this.#own = { value: crypto.randomUUID(), at: this.clock.now() };
    const next = (this.#next ??= batch());
    if (!this.#running) void this.#run();
    return next.done;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#next) {
        const wait = this.#lastWrite + MIN_WRITE_INTERVAL_MS - this.clock.now();
        if (wait > 0) await this.clock.sleep(wait);
        const current = this.#next;
        this.#next = undefined;
        this.#lastWrite = this.clock.now();
        try {
          await this.kv.put(this.key, this.#own!.value);
          current.resolve();
        } catch (err) {
          if (++current.tries >= WRITE_ATTEMPTS) {
            log("warn", "search_cache_version_write_failed", { key: this.key, attempts: current.tries, error: describeError(err) });
            current.resolve();
          } else {
            // A bump during the write may have started the next batch: this one rides on it.
            const later = this.#next as Batch | undefined;
            if (later) void later.done.then(current.resolve);
            else this.#next = current;
          }
        }
      }
    } finally {
      this.#running = false;
    }
  }
}

const kvVersions = new WeakMap<Cache, Map<string, KvVersion>>();

/** The isolate's one KvVersion of `key` in `kv` (its throttle only works if every writer shares it). */
export function kvVersion(kv: Cache, key: string): KvVersion {
  let byKey = kvVersions.get(kv);
  if (!byKey) kvVersions.set(kv, (byKey = new Map()));
  let v = byKey.get(key);
  if (!v) byKey.set(key, (v = new KvVersion(kv, key)));
  return v;
}

export const versionKey = (scope: string) => `search:version:${scope}`;

/** Every scope's version in KV: for Node (benchmarks), where there is no user's authority to keep them. */
export const kvCacheVersions = (kv: Cache): CacheVersions => ({
  read: (scope) => kvVersion(kv, versionKey(scope)).read(),
  bump: (scope) => kvVersion(kv, versionKey(scope)).bump(),
});

/** Lower-cased, whitespace-collapsed, Unicode-normalised: "Cats  and DOGS" and "cats and dogs" share an entry. */
export const normalizeQuery = (q: string) => q.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();

export async function cacheKey(parts: { versions: string[]; scope: string; corpus: string; mode: string; limit: number; query: string }) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.query));
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  return `search:${parts.versions.join(":")}:${parts.scope}:${parts.corpus}:${parts.mode}:${parts.limit}:${hex}`;
}

/** A cache in this process's memory: for Node (benchmarks), where there is no KV. */
export function memoryCache(): Cache {
  const memory = new Map<string, string>();
  return {
    get: (async (key: string, type?: string) => {
      const v = memory.get(key) ?? null;
      return v !== null && type === "json" ? JSON.parse(v) : v;
    }) as Cache["get"],
    put: async (key, value) => void memory.set(key, String(value)),
  };
}
