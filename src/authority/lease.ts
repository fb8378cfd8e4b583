import { exhausted, type Budgets, type Spent } from "./budget.ts";

/**
 * A thread agent's admission for its next turn, taken ahead from the user's authority: one turn's
 * reservation of tokens and one slot of the turn rate window, held there as any admitted turn's are,
 * for one key. A warm thread's turn starts on it without a call (the call was the first chunk's
 * excess at 20 threads: 73-134 ms p50, bench/README.md); its use is reported in the background.
 */
export type Lease = { leaseId: string; keyHash: string; tokens: number; rate: RateRule; expiresAt: number };
export type RateRule = { limit: number; windowSeconds: number };
/** How long a thread agent may start a turn on a lease. */
export const LEASE_MS = 30_000;
/** How much longer the authority counts it: a use reported late (the call on its way) still finds it. */
export const LEASE_GRACE_MS = 15_000;

/**
 * Whether a lease may be granted. Only from spare room, so a lease never refuses a turn that asks the
 * authority itself: after it, the budgets keep room for one more such reservation and the window a slot.
 */
export function leaseGrantable(s: { budgets: Budgets; spent: Spent; reserved: number; tokens: number; calls: number; leases: number; limit: number; now: Date }): boolean {
  return !exhausted(s.budgets, s.spent, s.reserved + 2 * s.tokens, s.now) && s.calls + s.leases + 2 <= s.limit;
}

/** Whether a turn may start on the thread's lease: unexpired, the same key, room for its reservation, and granted under the turn's rate rule. */
export function leaseCovers(lease: Lease, turn: { keyHash?: string; reserve: number; rate: RateRule }, now: number): boolean {
  return (
    lease.expiresAt > now &&
    lease.keyHash === turn.keyHash &&
    turn.reserve <= lease.tokens &&
    lease.rate.limit === turn.rate.limit &&
    lease.rate.windowSeconds === turn.rate.windowSeconds
  );
}

/** What a thread asks to lease for its next turn: this turn's reservation grown by the longest reply, within the most a turn may reserve (a next turn it does not cover asks the authority). */
export const nextLeaseTokens = (reserve: number, maxOutputTokens: number, cap: number) => Math.min(cap, reserve + maxOutputTokens);
