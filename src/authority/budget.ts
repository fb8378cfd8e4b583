/**
 * Token budgets per period and what has been spent against them: pure, so the user's authority
 * (which holds the numbers) and the tests share one rule. Periods are UTC days and months.
 */
export type Period = "lifetime" | "daily" | "monthly";
export type Budgets = Record<Period, number | null>;
export type Spent = { lifetime: number; day: { key: string; tokens: number }; month: { key: string; tokens: number } };

const dayKey = (now: Date) => now.toISOString().slice(0, 10);
const monthKey = (now: Date) => now.toISOString().slice(0, 7);

export const noSpend = (now: Date): Spent => ({ lifetime: 0, day: { key: dayKey(now), tokens: 0 }, month: { key: monthKey(now), tokens: 0 } });

/** The same spend, with a day or month that has ended starting again from zero. */
export function current(spent: Spent, now: Date): Spent {
  return {
    lifetime: spent.lifetime,
    day: spent.day.key === dayKey(now) ? spent.day : { key: dayKey(now), tokens: 0 },
    month: spent.month.key === monthKey(now) ? spent.month : { key: monthKey(now), tokens: 0 },
  };
}

export function addSpend(spent: Spent, tokens: number, now: Date): Spent {
  const s = current(spent, now);
  return { lifetime: s.lifetime + tokens, day: { ...s.day, tokens: s.day.tokens + tokens }, month: { ...s.month, tokens: s.month.tokens + tokens } };
}

/** When a period's budget is next replenished: null for the lifetime budget, which never is. */
export function resetsAt(period: Period, now: Date): Date | null {
  if (period === "daily") return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  if (period === "monthly") return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return null;
}

/** The start of the current day and month, for reading their spend from the ledger. */
export const periodStarts = (now: Date) => ({ day: new Date(`${dayKey(now)}T00:00:00Z`), month: new Date(`${monthKey(now)}-01T00:00:00Z`) });

/**
 * The first budget with no room left for a new turn: spent plus what turns in flight have reserved
 * reaches it. A turn is admitted while there is any room, and then reserves its estimate, so turns
 * running at once can pass a budget by at most the last one's reservation (see README, Budgets).
 */
export function exhausted(budgets: Budgets, spent: Spent, reserved: number, now: Date): { period: Period; budget: number; used: number; resetsAt: Date | null } | undefined {
  const s = current(spent, now);
  const used: Record<Period, number> = { lifetime: s.lifetime, daily: s.day.tokens, monthly: s.month.tokens };
  for (const period of ["lifetime", "monthly", "daily"] as const) {
    const budget = budgets[period];
    if (budget !== null && used[period] + reserved >= budget) return { period, budget, used: used[period], resetsAt: resetsAt(period, now) };
  }
  return undefined;
}

/** What is left of each budget (never below zero), null where there is none. */
export function remaining(budgets: Budgets, spent: Spent, now: Date): Budgets {
  const s = current(spent, now);
  const left = (b: number | null, used: number) => (b === null ? null : Math.max(0, b - used));
  return { lifetime: left(budgets.lifetime, s.lifetime), daily: left(budgets.daily, s.day.tokens), monthly: left(budgets.monthly, s.month.tokens) };
}

/** A turn's reservation: its context (about 4 characters a token) and the most its reply may be. */
export const estimateTokens = (chars: number) => Math.ceil(chars / 4);
