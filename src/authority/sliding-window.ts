/** The part of Durable Object storage the limiter needs: one object's own, strongly consistent storage. */
export type LimiterStorage = Pick<DurableObjectStorage, "get" | "put">;

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

/**
 * Sliding-window limit: at most `limit` calls in any `windowSeconds`, kept in a Durable Object's own
 * storage: per object by construction, it survives eviction and needs no coordination.
 */
export async function takeSlot(storage: LimiterStorage, key: string, limit: number, windowSeconds: number, now = Date.now()): Promise<RateDecision> {
  const windowMs = windowSeconds * 1000;
  const calls = ((await storage.get<number[]>(key)) ?? []).filter((t) => t > now - windowMs);
  if (calls.length >= limit) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((calls[0]! + windowMs - now) / 1000)) };
  calls.push(now);
  await storage.put(key, calls);
  return { ok: true };
}
