import { and, eq, gte, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { spendLedger } from "./schema.ts";

/** One model call's spend, as the user's authority records it. */
export type SpendEntry = {
  entryId: string;
  userId: string;
  threadId: string | null;
  turnId: string | null;
  kind: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  at: number;
};

/** Appends entries; an entry already there (a replay of the authority's outbox) is skipped. */
export async function appendSpend(db: Db, entries: SpendEntry[]): Promise<void> {
  if (!entries.length) return;
  await db
    .insert(spendLedger)
    .values(entries.map(({ at, ...e }) => ({ ...e, createdAt: new Date(at) })))
    .onConflictDoNothing({ target: spendLedger.entryId });
}

const tokens = sql<number>`coalesce(sum(${spendLedger.inputTokens} + ${spendLedger.outputTokens}), 0)::float8`;

/** A user's spend in all, since the start of the day and since the start of the month. */
export async function spendSince(db: Db, userId: string, starts: { day: Date; month: Date }) {
  const [row] = await db
    .select({
      lifetime: tokens,
      day: sql<number>`coalesce(sum(${spendLedger.inputTokens} + ${spendLedger.outputTokens}) filter (where ${spendLedger.createdAt} >= ${starts.day.toISOString()}), 0)::float8`,
      month: sql<number>`coalesce(sum(${spendLedger.inputTokens} + ${spendLedger.outputTokens}) filter (where ${spendLedger.createdAt} >= ${starts.month.toISOString()}), 0)::float8`,
    })
    .from(spendLedger)
    .where(eq(spendLedger.userId, userId));
  return { lifetime: Number(row?.lifetime ?? 0), day: Number(row?.day ?? 0), month: Number(row?.month ?? 0) };
}

export type Usage = { inputTokens: number; outputTokens: number; totalTokens: number; turns: number };

/** Token totals from the ledger, for a user or one of their threads (deleted messages still count). */
export async function usageTotals(db: Db, scope: { threadId: string } | { userId: string }, since?: Date): Promise<Usage> {
  const where = and("threadId" in scope ? eq(spendLedger.threadId, scope.threadId) : eq(spendLedger.userId, scope.userId), since ? gte(spendLedger.createdAt, since) : undefined);
  const [row] = await db
    .select({
      inputTokens: sql<number>`coalesce(sum(${spendLedger.inputTokens}), 0)::float8`,
      outputTokens: sql<number>`coalesce(sum(${spendLedger.outputTokens}), 0)::float8`,
      // A thread's title is a model call of its own, charged like any other, but not a turn.
      turns: sql<number>`count(distinct coalesce(${spendLedger.turnId}, ${spendLedger.entryId})) filter (where ${spendLedger.kind} <> 'title')`,
    })
    .from(spendLedger)
    .where(where);
  const inputTokens = Number(row?.inputTokens ?? 0);
  const outputTokens = Number(row?.outputTokens ?? 0);
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, turns: Number(row?.turns ?? 0) };
}
