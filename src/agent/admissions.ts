import { userAuthority } from "../authority/client.ts";
import { leaseCovers, nextLeaseTokens, type Lease } from "../authority/lease.ts";
import { getConfig } from "../config.ts";
import { AppError, type Refusal } from "../errors.ts";
import type { Flags } from "../flags/index.ts";
import { describeError, log } from "../observability/log.ts";

/**
 * `reported`: settles once the authority has the turn's reservation (a lease's use is reported after
 * the turn starts). `searchVersion`: the version of the owner's documents as the authority answered
 * the admission (undefined: its report failed), which the turn's searches key their cache on.
 */
export type Admission = { refused?: AppError; reported?: Promise<unknown>; searchVersion?: Promise<number | undefined>; leased: boolean };

/**
 * A thread's admissions against its owner's authority, which checks the caller's key, the budgets
 * (with the turns in flight) and the rate window, and reserves the turn's estimate. No Postgres on
 * this path. A turn the thread's lease covers (./lease.ts) starts without the call: the lease
 * becomes its admission, reported in the background, and the reply brings the next lease. Only the
 * newest call's lease is kept: one that answers after a later call, or after a revocation, is not.
 */
export class Admissions {
  #lease: Lease | undefined;
  #asked = 0;
  /**
   * A call whose answer may bring the lease (a prefetch, a lease's report). A turn waits for it rather
   * than ask past it: the authority counts the lease it grants there, and a turn asked for meanwhile
   * was refused at the rate limit by its own thread's lease.
   */
  #coming: Promise<unknown> | undefined;
  private readonly env: Env;
  constructor(env: Env) {
    this.env = env;
  }

  /** The turn's admission: the refusal, if any, and how it was admitted. */
  async admit(turn: { ownerId: string; threadId: string; turnId: string; keyHash?: string; flags: Flags; reserve: number; cap: number }): Promise<Admission> {
    const { flags } = turn;
    if (getConfig(this.env).offline && !flags.offline_model_allowed)
      return { refused: new AppError("model_unavailable", "no model is configured and the offline model is turned off (flag offline_model_allowed)"), leased: false };
    const rate = { limit: flags.turn_rate_limit, windowSeconds: flags.turn_rate_window_seconds };
    const lease = nextLeaseTokens(turn.reserve, flags.turn_max_output_tokens, turn.cap);
    if (!this.#lease) await this.#coming;
    const held = this.#lease;
    this.#lease = undefined;
    const authority = userAuthority(this.env, turn.ownerId);
    if (held && leaseCovers(held, { keyHash: turn.keyHash, reserve: turn.reserve, rate }, Date.now())) {
      const used = { threadId: turn.threadId, leaseId: held.leaseId, turnId: turn.turnId, reserve: turn.reserve, at: Date.now(), windowSeconds: rate.windowSeconds, lease };
      const reported = this.#ask(authority.leaseUsed(used)).then(
        (r) => r.searchVersion,
        (err: unknown) => void log("warn", "lease_report_failed", { threadId: turn.threadId, turnId: turn.turnId, error: describeError(err) }),
      );
      this.#coming = reported;
      return { reported, searchVersion: reported, leased: true };
    }
    const r = await this.#ask<{ ok: true; lease?: Lease; searchVersion: number } | Refusal>(
      authority.admitTurn({ turnId: turn.turnId, threadId: turn.threadId, keyHash: turn.keyHash, rate, reserve: turn.reserve, release: held?.leaseId, lease }),
    );
    return r.ok ? { searchVersion: Promise.resolve(r.searchVersion), leased: false } : { refused: AppError.fromRefusal(r), leased: false };
  }

  /** A lease for the next turn, taken ahead while none is held (a client connected). */
  async prefetch(turn: { ownerId: string; threadId: string; keyHash: string; flags: Flags; reserve: number; cap: number }): Promise<void> {
    if (this.#lease) return;
    const rate = { limit: turn.flags.turn_rate_limit, windowSeconds: turn.flags.turn_rate_window_seconds };
    const tokens = nextLeaseTokens(turn.reserve, turn.flags.turn_max_output_tokens, turn.cap);
    await (this.#coming = this.#ask<{ ok: true; lease?: Lease } | Refusal>(
      userAuthority(this.env, turn.ownerId).lease({ threadId: turn.threadId, keyHash: turn.keyHash, tokens, rate }),
    ).catch(() => {}));
  }

  /** The lease is gone (a key revoked, the budgets changed); so is any on its way. */
  drop() {
    this.#lease = undefined;
    this.#asked++;
  }

  async #ask<T extends object>(call: Promise<T>): Promise<T> {
    const asked = ++this.#asked;
    const r = await call;
    if (asked === this.#asked) this.#lease = "lease" in r ? (r.lease as Lease | undefined) : undefined;
    return r;
  }
}
