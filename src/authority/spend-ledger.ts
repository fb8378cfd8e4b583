import { withDb } from "../db/client.ts";
import { appendSpend, type SpendEntry } from "../db/spend.ts";
import { describeError, log } from "../observability/log.ts";
import { backoffMs } from "../resilience.ts";
import { addSpend, current, noSpend, type Spent } from "./budget.ts";

/** One model call's spend as a thread agent reports it; the authority adds who and where. */
export type CallSpend = Pick<SpendEntry, "entryId" | "kind" | "model" | "inputTokens" | "outputTokens" | "at">;

/** A turn that never settles (its agent was evicted mid-turn) stops holding its reservation after this. */
const RESERVATION_TTL_MS = 15 * 60_000;
const LEDGER_BATCH = 200;
const LEDGER_DELAY_MS = 60_000;
// Storage keys: the spend so far (`spent`), an entry not yet in Postgres (`ledger:<at>:<entryId>`), a turn's reservation (`res:<turnId>`).
const SPENT = "spent";
const LEDGER_RETRY = "ledger-retry";

/**
 * A user's spend as their authority keeps it: the totals per period, the turns' reservations, and
 * the ledger entries on their way to Postgres (the system of record, append only). An entry counts
 * here at once; it is written a minute later, so a user's calls in that time go in one transaction
 * (a turn with a tool step is two calls: two transactions when each was written at once; at 5 s,
 * still one a turn once turns took 9 s at 100 threads; at 15 s, 0.67 a turn once they took 20 s:
 * bench/README.md, "Turns"). The usage routes write them before they read. The owner's alarm calls `drain`.
 */
export class SpendLedger {
  #draining: Promise<void> | undefined;
  private readonly storage: DurableObjectStorage;
  private readonly env: Env;
  private readonly userId: string;
  constructor(storage: DurableObjectStorage, env: Env, userId: string) {
    this.storage = storage;
    this.env = env;
    this.userId = userId;
  }

  async spent(now: Date): Promise<Spent> {
    return current((await this.storage.get<Spent>(SPENT)) ?? noSpend(now), now);
  }

  /** The spend as first loaded: the ledger's totals in Postgres, plus the entries recorded here and not yet written there. */
  async load(fromPostgres: { lifetime: number; day: number; month: number }, now: Date): Promise<void> {
    const pending = [...(await this.storage.list<SpendEntry>({ prefix: "ledger:" })).values()].reduce((n, e) => n + e.inputTokens + e.outputTokens, 0);
    const base = noSpend(now);
    await this.storage.put(SPENT, {
      lifetime: fromPostgres.lifetime + pending,
      day: { ...base.day, tokens: fromPostgres.day + pending },
      month: { ...base.month, tokens: fromPostgres.month + pending },
    } satisfies Spent);
  }

  /** A turn's model calls: added to the spend, and to the ledger through this object. Answers the spend after them. */
  async record(turn: { turnId: string; threadId: string; calls: CallSpend[] }, now: Date): Promise<Spent> {
    let spent = await this.spent(now);
    const entries: Record<string, SpendEntry> = {};
    for (const c of turn.calls) {
      spent = addSpend(spent, c.inputTokens + c.outputTokens, now);
      entries[`ledger:${String(c.at).padStart(15, "0")}:${c.entryId}`] = { ...c, userId: this.userId, threadId: turn.threadId, turnId: turn.turnId };
    }
    await this.storage.put({ ...entries, [SPENT]: spent });
    if (turn.calls.length) await this.#drainSoon();
    return spent;
  }

  reserve(turnId: string, tokens: number, threadId: string, now: Date): Promise<void> {
    return this.storage.put(`res:${turnId}`, { tokens, at: now.getTime(), threadId });
  }

  async reservation(turnId: string): Promise<number> {
    return (await this.storage.get<{ tokens: number }>(`res:${turnId}`))?.tokens ?? 0;
  }

  async settle(turnId: string): Promise<void> {
    await this.storage.delete(`res:${turnId}`);
  }

  /** Tokens reserved by this user's turns in flight; reservations past their time are dropped. */
  async reserved(): Promise<number> {
    const all = await this.storage.list<{ tokens: number; at: number }>({ prefix: "res:" });
    const stale = [...all].filter(([, r]) => r.at < Date.now() - RESERVATION_TTL_MS).map(([k]) => k);
    if (stale.length) await this.storage.delete(stale);
    return [...all].filter(([k]) => !stale.includes(k)).reduce((n, [, r]) => n + r.tokens, 0);
  }

  async #drainSoon() {
    const at = Date.now() + LEDGER_DELAY_MS;
    const alarm = await this.storage.getAlarm();
    if (alarm === null || alarm > at) await this.storage.setAlarm(at);
  }

  /** Writes the entries still waiting here to Postgres; `rethrow`: a failure is the caller's (else it is logged, and the alarm tries again). */
  drain(rethrow = false): Promise<void> {
    this.#draining ??= (async () => {
      try {
        for (;;) {
          const batch = await this.storage.list<SpendEntry>({ prefix: "ledger:", limit: LEDGER_BATCH });
          if (!batch.size) break;
          await withDb(this.env, (db) => appendSpend(db, [...batch.values()]));
          await this.storage.delete([...batch.keys()]);
        }
        await this.storage.delete(LEDGER_RETRY);
      } catch (err) {
        // Postgres is down: the entries wait here (and count already); the alarm tries again, backing off.
        const attempt = ((await this.storage.get<number>(LEDGER_RETRY)) ?? 0) + 1;
        await this.storage.put(LEDGER_RETRY, attempt);
        await this.storage.setAlarm(Date.now() + 1000 + backoffMs(attempt, { baseDelayMs: 1000, maxDelayMs: 300_000 }));
        log("warn", "ledger_flush_failed", { userId: this.userId, attempt, error: describeError(err) });
        throw err;
      } finally {
        this.#draining = undefined;
      }
    })();
    return rethrow ? this.#draining : this.#draining.catch(() => {});
  }
}
