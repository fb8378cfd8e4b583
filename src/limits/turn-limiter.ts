import { DurableObject } from "cloudflare:workers";
import { takeSlot, type RateDecision } from "./sliding-window";

/**
 * One per user (named by user id): the user's turns in a sliding window, so the limit holds
 * across isolates, threads and connections.
 */
export class TurnLimiter extends DurableObject<Env> {
  take(limit: number, windowSeconds: number): Promise<RateDecision> {
    return takeSlot(this.ctx.storage, "turns", limit, windowSeconds);
  }
}

export async function takeTurn(env: Env, userId: string, limit: number, windowSeconds: number): Promise<RateDecision> {
  return env.TurnLimiter.get(env.TurnLimiter.idFromName(userId)).take(limit, windowSeconds);
}
