import { getConfig, type Config } from "../config.ts";
import { withDb, type Db } from "../db/client.ts";
import { overridesFor } from "../db/flags.ts";
import { mcpServersForThread } from "../db/mcp-servers.ts";
import type { McpServerRow } from "../db/schema.ts";
import { toAppError } from "../errors.ts";
import { TtlCache } from "../cache/ttl-cache.ts";
import { log } from "../observability/log.ts";
import { defaultFlags, flagValues, resolveFlags, type Flags, type Override, type ResolvedFlags } from "./definitions.ts";

export * from "./definitions.ts";
export { TtlCache } from "../cache/ttl-cache.ts";

/** Whose turn: the thread's owner and the thread (either may be unknown). */
export type FlagTarget = { userId?: string; threadId?: string };

const cache = new TtlCache<Flags>();

/** What a thread's turns read of Postgres besides its messages: its flags, and its MCP servers (null when Postgres could not say). */
export type ThreadSettings = { flags: Flags; mcpServers: McpServerRow[] | null };
const threads = new TtlCache<ThreadSettings>();

/** An admin changed an override: this isolate's turns see it at once; others within FLAG_CACHE_SECONDS (plus the one read that refreshes). */
export const invalidateFlags = () => (cache.clear(), threads.clear());

/** A thread's MCP servers changed (one registered or removed): seen as an override change is. */
export const forgetThreadSettings = () => threads.clear();

/** For tests, instead of waiting out FLAG_CACHE_SECONDS: every cached value is due for a refresh. */
export const expireFlags = () => (cache.expire(), threads.expire());

const logInvalid = (o: Override, error: unknown) => log("warn", "flag_override_invalid", { flag: o.flag, userId: o.userId, threadId: o.threadId, error: String(error) });

/** The flags as they are in Postgres now, with where each value came from (no cache: admin views read this). */
export async function resolvedFlagsIn(db: Db, config: Config, target: FlagTarget): Promise<ResolvedFlags> {
  return resolveFlags(config, await overridesFor(db, target), logInvalid);
}

/**
 * The flags for a turn of this user on this thread: read once, then served from the cache and
 * refreshed in the background every FLAG_CACHE_SECONDS. Never throws: with Postgres unreachable
 * it answers the last values it read, or the configured defaults.
 */
export async function flagsFor(env: Env, target: FlagTarget): Promise<Flags> {
  if (target.userId && target.threadId) return (await threadSettings(env, target.userId, target.threadId)).flags;
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

/**
 * A thread's flags and MCP servers, cached as flags are. Read together, on one connection: read
 * apart, each refreshed on a connection of its own, 0.33 connections a turn at 100 threads, where a
 * turn took longer than FLAG_CACHE_SECONDS (bench/README.md, "Turns"). With Postgres unreachable:
 * the last values read, or the configured defaults and no word on the MCP servers (the agent keeps
 * the ones it has). `db`: read on a connection the caller holds (a woken agent's history read).
 */
export function threadSettings(env: Env, userId: string, threadId: string, db?: Db): Promise<ThreadSettings> {
  const config = getConfig(env);
  const read = async (db: Db) => {
    const [resolved, mcpServers] = await Promise.all([resolvedFlagsIn(db, config, { userId, threadId }), mcpServersForThread(db, userId, threadId)]);
    return { flags: flagValues(resolved), mcpServers };
  };
  return threads.get(
    `${userId}/${threadId}`,
    config.FLAG_CACHE_SECONDS * 1000,
    () => (db ? read(db) : withDb(env, read)),
    (err, stale) => {
      log("warn", "flags_unavailable", { code: toAppError(err).code, threadId, using: stale ? "last" : "defaults" });
      return stale ?? { flags: defaultFlags(config), mcpServers: null };
    },
  );
}
