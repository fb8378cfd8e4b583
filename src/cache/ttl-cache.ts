/**
 * Values kept for a while, per key, served stale while they refresh: a read never waits on a load
 * once a key has a value (a turn must not wait on Postgres for its flags), and an expired value
 * starts one background refresh. A failed load asks `fallback` (given the last value, however
 * old) and keeps its answer for a TTL too, so an outage costs one failed read per key per TTL.
 */
export class TtlCache<T> {
  #entries = new Map<string, { value: T; expires: number }>();
  #loading = new Map<string, Promise<T>>();
  readonly maxEntries: number;
  private readonly now: () => number;
  constructor(maxEntries = 1000, now = () => Date.now()) {
    this.maxEntries = maxEntries;
    this.now = now;
  }

  async get(key: string, ttlMs: number, load: () => Promise<T>, fallback: (error: unknown, stale: T | undefined) => T): Promise<T> {
    const hit = this.#entries.get(key);
    if (hit && hit.expires > this.now()) return hit.value;
    const refresh = this.#refresh(key, ttlMs, load, fallback, hit?.value);
    return hit ? hit.value : refresh;
  }

  /** Forgets every value: the next read of each key loads (an admin's change, seen at once by this isolate). */
  clear(): void {
    this.#entries.clear();
  }

  /** Ages every value past its TTL, keeping it: the next read of each is served stale and refreshes (what time would do). */
  expire(): void {
    for (const entry of this.#entries.values()) entry.expires = 0;
  }

  /** Settles when no refresh is in flight. */
  async idle(): Promise<void> {
    while (this.#loading.size) await Promise.all(this.#loading.values());
  }

  get size() {
    return this.#entries.size;
  }

  #refresh(key: string, ttlMs: number, load: () => Promise<T>, fallback: (error: unknown, stale: T | undefined) => T, stale: T | undefined): Promise<T> {
    let loading = this.#loading.get(key);
    if (loading) return loading;
    loading = load()
      .catch((err: unknown) => fallback(err, stale))
      .then((value) => {
        this.#entries.delete(key);
        this.#entries.set(key, { value, expires: this.now() + ttlMs });
        // Map order is insertion order: the first key is the one refreshed longest ago.
        if (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
        return value;
      })
      .finally(() => this.#loading.delete(key));
    this.#loading.set(key, loading);
    return loading;
  }
}
