import { DurableObject } from "cloudflare:workers";

export type TakeResult = { ok: true; remaining: number } | { ok: false; retryAfter: number };

/**
 * One per user (named by user id): a sliding-window log of the user's turns, so the limit holds
 * across isolates, threads and connections. The window lives in memory; if the object is evicted
 * the window starts empty, which errs on the side of letting a user through.
 */
export class TurnLimiter extends DurableObject<Env> {
  #turns: number[] = [];

  async take(limit: number, windowSeconds: number): Promise<TakeResult> {
    const now = Date.now();
    const windowMs = windowSeconds * 1000;
    this.#turns = this.#turns.filter((t) => t > now - windowMs);
    if (this.#turns.length >= limit) {
      const retryAfter = Math.max(1, Math.ceil((this.#turns[0]! + windowMs - now) / 1000));
      return { ok: false, retryAfter };
    }
    this.#turns.push(now);
    return { ok: true, remaining: limit - this.#turns.length };
  }
}

export async function takeTurn(env: Env, userId: string, limit: number, windowSeconds: number): Promise<TakeResult> {
  return env.TurnLimiter.get(env.TurnLimiter.idFromName(userId)).take(limit, windowSeconds);
}
