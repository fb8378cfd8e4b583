import { getConfig, type Config } from "../config";
import { withDb, type Db } from "../db/client";
import { overridesFor } from "../db/flags";
import { toAppError } from "../errors";
import { log } from "../observability/log";
import { defaultFlags, flagValues, resolveFlags, type Flags, type Override, type ResolvedFlags } from "./definitions";

export * from "./definitions";

/** Whose turn: the thread's owner and the thread (either may be unknown). */
export type FlagTarget = { userId?: string; threadId?: string };

/**
 * Values kept for a while, per key. A failed load asks `fallback` (given the last value, however
 * old) and keeps its answer for a TTL too, so an outage costs one failed read per key per TTL.
 */
export class TtlCache<T> {
  #entries = new Map<string, { value: T; expires: number }>();
  constructor(
    readonly maxEntries = 1000,
    private readonly now = () => Date.now(),
  ) {}

  async get(key: string, ttlMs: number, load: () => Promise<T>, fallback: (error: unknown, stale: T | undefined) => T): Promise<T> {
    const hit = this.#entries.get(key);
    if (hit && hit.expires > this.now()) return hit.value;
    let value: T;
    try {
      value = await load();
    } catch (err) {
      value = fallback(err, hit?.value);
    }
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: this.now() + ttlMs });
    // Map order is insertion order: the first key is the one refreshed longest ago.
    if (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    return value;
  }

  get size() {
    return this.#entries.size;
  }
}

const cache = new TtlCache<Flags>();

const logInvalid = (o: Override, error: unknown) =>
  log("warn", "flag_override_invalid", { flag: o.flag, userId: o.userId, threadId: o.threadId, error: String(error) });

/** The flags as they are in Postgres now, with where each value came from (no cache: admin views read this). */
export async function resolvedFlagsIn(db: Db, config: Config, target: FlagTarget): Promise<ResolvedFlags> {
  return resolveFlags(config, await overridesFor(db, target), logInvalid);
}

/**
 * The flags for a turn of this user on this thread, at most FLAG_CACHE_SECONDS old. Never throws:
 * with Postgres unreachable it answers the last values it read, or the configured defaults.
 */
export async function flagsFor(env: Env, target: FlagTarget): Promise<Flags> {
  const config = getConfig(env);
  return cache.get(
    `${target.userId ?? ""}/${target.threadId ?? ""}`,
    config.FLAG_CACHE_SECONDS * 1000,
    async () => flagValues(await withDb(env, (db) => resolvedFlagsIn(db, config, target))),
    (err, stale) => {
      log("warn", "flags_unavailable", { code: toAppError(err).code, threadId: target.threadId, using: stale ? "last" : "defaults" });
      return stale ?? defaultFlags(config);
    },
  );
}
