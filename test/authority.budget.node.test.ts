import { describe, expect, it } from "vitest";
import { addSpend, current, exhausted, noSpend, remaining, resetsAt } from "../src/authority/budget.ts";

const at = (iso: string) => new Date(iso);

describe("budgets per period", () => {
  const none = { lifetime: null, daily: null, monthly: null };
  it("are exhausted when spent plus what is reserved reaches them, naming the period and its reset", () => {
    const now = at("2026-12-01T10:00:00Z");
    const spent = addSpend(noSpend(now), 90, now);
    expect(exhausted(none, spent, 1e9, now)).toBeUndefined();
    expect(exhausted({ ...none, daily: 100 }, spent, 9, now)).toBeUndefined();
    expect(exhausted({ ...none, daily: 100 }, spent, 10, now)).toEqual({ period: "daily", budget: 100, used: 90, resetsAt: at("2026-12-02T00:00:00Z") });
    expect(exhausted({ ...none, lifetime: 90, daily: 100 }, spent, 0, now)).toMatchObject({ period: "lifetime", resetsAt: null });
    expect(exhausted({ ...none, monthly: 50 }, spent, 0, now)).toMatchObject({ period: "monthly", resetsAt: at("2027-01-01T00:00:00Z") });
  });

  it("start a day and a month again from zero; the lifetime total never does", () => {
    const day1 = at("2026-12-31T23:59:00Z");
    const day2 = at("2027-01-01T00:01:00Z");
    const spent = addSpend(noSpend(day1), 40, day1);
    expect(current(spent, day2)).toEqual({ lifetime: 40, day: { key: "2027-01-01", tokens: 0 }, month: { key: "2027-01", tokens: 0 } });
    expect(addSpend(spent, 5, day2)).toEqual({ lifetime: 45, day: { key: "2027-01-01", tokens: 5 }, month: { key: "2027-01", tokens: 5 } });
    expect(remaining({ lifetime: 100, daily: 30, monthly: null }, spent, day1)).toEqual({ lifetime: 60, daily: 0, monthly: null });
    expect(resetsAt("daily", at("2026-02-28T12:00:00Z"))).toEqual(at("2026-03-01T00:00:00Z"));
  });
});
