import { and, eq, isNull, or, type SQL } from "drizzle-orm";
import type { Db } from "./client.ts";
import { flagOverrides } from "./schema.ts";

/** Where an override applies. */
export type FlagScope = { kind: "global" } | { kind: "user"; userId: string } | { kind: "thread"; threadId: string };

const global = and(isNull(flagOverrides.userId), isNull(flagOverrides.threadId))!;

function at(scope: FlagScope): SQL {
  if (scope.kind === "user") return eq(flagOverrides.userId, scope.userId);
  if (scope.kind === "thread") return eq(flagOverrides.threadId, scope.threadId);
  return global;
}

const columns = { flag: flagOverrides.flag, value: flagOverrides.value, userId: flagOverrides.userId, threadId: flagOverrides.threadId };

/** Every override that can apply to a turn of this user on this thread: global, the user's, the thread's. */
export async function overridesFor(db: Db, ids: { userId?: string; threadId?: string }) {
  const conditions = [global];
  if (ids.userId) conditions.push(at({ kind: "user", userId: ids.userId }));
  if (ids.threadId) conditions.push(at({ kind: "thread", threadId: ids.threadId }));
  return db
    .select(columns)
    .from(flagOverrides)
    .where(or(...conditions));
}

/** The overrides set at exactly this scope. */
export async function overridesAt(db: Db, scope: FlagScope) {
  return db.select(columns).from(flagOverrides).where(at(scope)).orderBy(flagOverrides.flag);
}

export async function setOverride(db: Db, scope: FlagScope, flag: string, value: unknown): Promise<void> {
  await db
    .insert(flagOverrides)
    .values({ flag, value, userId: scope.kind === "user" ? scope.userId : null, threadId: scope.kind === "thread" ? scope.threadId : null })
    .onConflictDoUpdate({ target: [flagOverrides.flag, flagOverrides.userId, flagOverrides.threadId], set: { value, updatedAt: new Date() } });
}

/** Removes one override; false when there was none. */
export async function clearOverride(db: Db, scope: FlagScope, flag: string): Promise<boolean> {
  const deleted = await db
    .delete(flagOverrides)
    .where(and(at(scope), eq(flagOverrides.flag, flag)))
    .returning({ flag: flagOverrides.flag });
  return deleted.length > 0;
}
