import { describe, expect, it } from "vitest";
import { addSpend, noSpend } from "../src/authority/budget.ts";
import { leaseCovers, leaseGrantable, nextLeaseTokens, type Lease } from "../src/authority/lease.ts";
import { recordSlot, slotsTaken, takeSlot } from "../src/authority/sliding-window.ts";

const now = new Date("2026-12-02T10:00:00Z");
const none = { lifetime: null, daily: null, monthly: null };
const grant = { budgets: none, spent: noSpend(now), reserved: 0, tokens: 100, calls: 0, leases: 0, limit: 20, now };
const memory = () => {
  const m = new Map<string, unknown>();
  return { get: async <T>(k: string) => m.get(k) as T | undefined, put: async (k: string, v: unknown) => void m.set(k, v) } as Parameters<typeof takeSlot>[0];
};

describe("admission leases", () => {
  it("are granted only from spare room: the budget keeps one more such reservation, the window a slot", () => {
    expect(leaseGrantable(grant)).toBe(true);
    // 1000 - 700 spent - 99 reserved = 201 left: after a lease of 100, 101 remain (room for another).
    const spent = addSpend(noSpend(now), 700, now);
    expect(leaseGrantable({ ...grant, budgets: { ...none, lifetime: 1000 }, spent, reserved: 99 })).toBe(true);
    expect(leaseGrantable({ ...grant, budgets: { ...none, lifetime: 1000 }, spent, reserved: 100 })).toBe(false);
    expect(leaseGrantable({ ...grant, budgets: { ...none, daily: 1000 }, spent, reserved: 100 })).toBe(false);
    expect(leaseGrantable({ ...grant, calls: 15, leases: 3 })).toBe(true);
    expect(leaseGrantable({ ...grant, calls: 16, leases: 3 })).toBe(false);
    expect(leaseGrantable({ ...grant, limit: 1 })).toBe(false);
  });

  it("cover a turn of the same key, within their tokens, under the rate rule they were granted by, until they expire", () => {
    const lease: Lease = { leaseId: "l", keyHash: "k", tokens: 100, rate: { limit: 20, windowSeconds: 60 }, expiresAt: now.getTime() + 1000 };
    const turn = { keyHash: "k", reserve: 100, rate: { limit: 20, windowSeconds: 60 } };
    expect(leaseCovers(lease, turn, now.getTime())).toBe(true);
    expect(leaseCovers(lease, turn, now.getTime() + 1000)).toBe(false);
    expect(leaseCovers(lease, { ...turn, keyHash: "other" }, now.getTime())).toBe(false);
    expect(leaseCovers(lease, { ...turn, keyHash: undefined }, now.getTime())).toBe(false);
    expect(leaseCovers(lease, { ...turn, reserve: 101 }, now.getTime())).toBe(false);
    expect(leaseCovers(lease, { ...turn, rate: { limit: 10, windowSeconds: 60 } }, now.getTime())).toBe(false);
    expect(leaseCovers(lease, { ...turn, rate: { limit: 20, windowSeconds: 30 } }, now.getTime())).toBe(false);
    expect(nextLeaseTokens(500, 4096, 100_000)).toBe(4596);
    expect(nextLeaseTokens(500, 4096, 1000)).toBe(1000);
  });

  it("hold slots of the rate window until used; a used one counts from when its turn started", async () => {
    const s = memory();
    const t = now.getTime();
    expect(await takeSlot(s, "turns", 3, 60, t, 2)).toEqual({ ok: true });
    expect(await takeSlot(s, "turns", 3, 60, t, 2)).toEqual({ ok: false, retryAfterSeconds: 60 });
    await recordSlot(s, "turns", t - 30_000, 60, t);
    expect(await slotsTaken(s, "turns", 60, t)).toBe(2);
    // The one recorded 30 s back leaves the window first.
    expect(await takeSlot(s, "turns", 3, 60, t + 1000, 1)).toEqual({ ok: false, retryAfterSeconds: 29 });
    expect(await slotsTaken(s, "turns", 60, t + 30_001)).toBe(1);
    // Leases alone fill the window: they end within a minute, and a retry may find a slot sooner.
    expect(await takeSlot(memory(), "turns", 2, 60, t, 2)).toEqual({ ok: false, retryAfterSeconds: 1 });
  });
});
