/** The part of Durable Object storage the limiter needs: one object's own, strongly consistent storage. */
export type LimiterStorage = Pick<DurableObjectStorage, "get" | "put">;

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

/**
 * Sliding-window limit: at most `limit` calls in any `windowSeconds`, kept in a Durable Object's own
 * storage: per object by construction, it survives eviction and needs no coordination. `held`: slots
 * taken ahead and not yet used (leases), which count as calls.
 */
export async function takeSlot(storage: LimiterStorage, key: string, limit: number, windowSeconds: number, now = Date.now(), held = 0): Promise<RateDecision> {
  const windowMs = windowSeconds * 1000;
  const calls = ((await storage.get<number[]>(key)) ?? []).filter((t) => t > now - windowMs);
  if (calls.length + held >= limit) return { ok: false, retryAfterSeconds: calls.length ? Math.max(1, Math.ceil((calls[0]! + windowMs - now) / 1000)) : 1 };
  calls.push(now);
  await storage.put(key, calls);
  return { ok: true };
}

/** The calls in the window now. */
export async function slotsTaken(storage: LimiterStorage, key: string, windowSeconds: number, now = Date.now()): Promise<number> {
  return ((await storage.get<number[]>(key)) ?? []).filter((t) => t > now - windowSeconds * 1000).length;
}

/** A call made at `at` on a slot taken ahead (a lease's): it counts in the window from when it was made. */
export async function recordSlot(storage: LimiterStorage, key: string, at: number, windowSeconds: number, now = Date.now()): Promise<void> {
  const calls = ((await storage.get<number[]>(key)) ?? []).filter((t) => t > now - windowSeconds * 1000);
  calls.push(at);
  await storage.put(
    key,
    calls.sort((a, b) => a - b),
  );
}
