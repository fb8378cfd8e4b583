import { AppError, type Refusal } from "../errors.ts";
import { exhausted, type Budgets } from "./budget.ts";
import { LEASE_GRACE_MS, LEASE_MS, leaseGrantable, type Lease, type RateRule } from "./lease.ts";
import { recordSlot, slotsTaken, takeSlot } from "./sliding-window.ts";
import type { SpendLedger } from "./spend-ledger.ts";

export type HeldLease = Lease & { threadId: string };
const leaseTokens = (leases: readonly Lease[]) => leases.reduce((n, l) => n + l.tokens, 0);
// Storage keys: the turn rate window (`turns`), a thread's lease (`lease:<threadId>:<leaseId>`).
const TURNS = "turns";

/**
 * A user's turn admissions, as their authority decides them: the budgets (spent, plus what turns in
 * flight reserved and leases hold), the turn rate window, and the leases thread agents take ahead
 * for their next turn (./lease.ts). The key is checked by the caller.
 */
export class TurnAdmissions {
  private readonly storage: DurableObjectStorage;
  private readonly ledger: SpendLedger;
  constructor(storage: DurableObjectStorage, ledger: SpendLedger) {
    this.storage = storage;
    this.ledger = ledger;
  }

  /**
   * One turn: no budget is spent and the rate window has room; then the turn reserves its estimate
   * until it settles. `release`: the thread's lease it no longer holds (it did not cover this turn);
   * `lease`: tokens to lease for the thread's next turn, if there is spare room. A refusal says which
   * budget and when it resets.
   */
  async admit(
    budgets: Budgets,
    input: { turnId: string; threadId: string; keyHash?: string; rate: RateRule; reserve: number; release?: string; lease?: number },
  ): Promise<{ ok: true; lease?: Lease } | Refusal> {
    if (input.release) await this.storage.delete(`lease:${input.threadId}:${input.release}`);
    const now = new Date();
    const leases = await this.held(now);
    const over = exhausted(budgets, await this.ledger.spent(now), (await this.ledger.reserved()) + leaseTokens(leases), now);
    if (over) {
      const when = over.resetsAt ? `; it resets at ${over.resetsAt.toISOString()}` : "";
      return new AppError("token_budget_exhausted", `your ${over.period} token budget (${over.budget}) is spent${when}`, {
        details: { budget: over.period, limit: over.budget, used: over.used, resetsAt: over.resetsAt?.toISOString() ?? null },
      }).toRefusal();
    }
    const rate = await takeSlot(this.storage, TURNS, input.rate.limit, input.rate.windowSeconds, now.getTime(), leases.length);
    if (!rate.ok) return new AppError("rate_limited", `too many turns; retry in ${rate.retryAfterSeconds} s`, { retryAfter: rate.retryAfterSeconds }).toRefusal();
    await this.ledger.reserve(input.turnId, input.reserve, input.threadId, now);
    const lease =
      input.lease && input.keyHash
        ? await this.grant(budgets, { threadId: input.threadId, keyHash: input.keyHash, tokens: input.lease, rate: input.rate }, leases, now)
        : undefined;
    return { ok: true as const, lease };
  }

  /**
   * A turn started on the thread's lease at `at`: the lease becomes the turn's reservation (its own
   * estimate) and its slot in the rate window, from when it started. A lease dropped here meanwhile
   * (rotation, expiry) was used before the agent knew: the turn is counted all the same. Answers the
   * lease it used, if it was still held (the caller decides on the next one).
   */
  async used(input: { threadId: string; leaseId: string; turnId: string; reserve: number; at: number; windowSeconds: number }): Promise<HeldLease | undefined> {
    const key = `lease:${input.threadId}:${input.leaseId}`;
    const used = await this.storage.get<HeldLease>(key);
    await this.storage.delete(key);
    await this.ledger.reserve(input.turnId, input.reserve, input.threadId, new Date());
    await recordSlot(this.storage, TURNS, input.at, input.windowSeconds);
    return used;
  }

  /** A lease for a thread's next turn, when the budgets and the rate window have room to spare for it (./lease.ts). */
  async grant(budgets: Budgets, want: { threadId: string; keyHash: string; tokens: number; rate: RateRule }, leases?: HeldLease[], now = new Date()): Promise<Lease | undefined> {
    const held = leases ?? (await this.held(now));
    const grantable = leaseGrantable({
      budgets,
      spent: await this.ledger.spent(now),
      reserved: (await this.ledger.reserved()) + leaseTokens(held),
      tokens: want.tokens,
      calls: await slotsTaken(this.storage, TURNS, want.rate.windowSeconds, now.getTime()),
      leases: held.length,
      limit: want.rate.limit,
      now,
    });
    if (!grantable) return undefined;
    const lease: Lease = { leaseId: crypto.randomUUID(), keyHash: want.keyHash, tokens: want.tokens, rate: want.rate, expiresAt: now.getTime() + LEASE_MS };
    await this.storage.put(`lease:${want.threadId}:${lease.leaseId}`, { ...lease, threadId: want.threadId } satisfies HeldLease);
    return lease;
  }

  /** Tokens held for others than `threadId` (their reservations and leases), less this turn's own reservation while it runs. */
  async heldByOthers(threadId: string, turnId: string, final: boolean): Promise<number> {
    const leases = (await this.held(new Date())).filter((l) => l.threadId !== threadId);
    return (await this.ledger.reserved()) + leaseTokens(leases) - (final ? 0 : await this.ledger.reservation(turnId));
  }

  /** The leases held now; those past their time (and its grace) are dropped: their slots and tokens are free again. */
  async held(now: Date): Promise<HeldLease[]> {
    const all = await this.storage.list<HeldLease>({ prefix: "lease:" });
    const stale = [...all].filter(([, l]) => l.expiresAt + LEASE_GRACE_MS <= now.getTime()).map(([k]) => k);
    if (stale.length) await this.storage.delete(stale);
    return [...all].filter(([k]) => !stale.includes(k)).map(([, l]) => l);
  }

  /** The threads whose agents hold a lease, by this record (expired ones included: an agent may not yet know). */
  async threads(): Promise<Set<string>> {
    return new Set([...(await this.storage.list<HeldLease>({ prefix: "lease:" })).values()].map((l) => l.threadId));
  }

  /** Frees a thread's leases granted before `before` (its agent has dropped them); all of them when it is deleted (`before` omitted). */
  async free(threadId: string, before = Infinity): Promise<void> {
    const held = await this.storage.list<HeldLease>({ prefix: `lease:${threadId}:` });
    const freed = [...held].filter(([, l]) => l.expiresAt - LEASE_MS < before).map(([k]) => k);
    if (freed.length) await this.storage.delete(freed);
  }
}
