import { afterEach, describe, expect, it, vi } from "vitest";
import type { Outbox } from "../src/agent/outbox.ts";
import { OutboxSync } from "../src/agent/outbox-sync.ts";

/** An outbox that counts its drains. */
function fakeOutbox() {
  const drains: number[] = [];
  let drained!: () => void;
  const next = () => new Promise<void>((r) => (drained = r));
  let waiting = next();
  const outbox = {
    get state() {
      return { backlog: 0, oldestAt: null, quarantined: 0, attempt: 0, nextRetryAt: null };
    },
    async flush() {
      drains.push(Date.now());
      drained();
      waiting = next();
    },
    setRetry() {},
  };
  return { outbox: outbox as unknown as Outbox, drains, drained: () => waiting };
}

const sync = (outbox: Outbox) => new OutboxSync(outbox, { env: {} as Env, threadId: () => "t", schedule: async () => {} });

afterEach(() => vi.useRealTimers());

describe("the outbox after a turn", () => {
  it("waits for the thread to pause: a turn begun at once takes the last one's writes into its own batch", async () => {
    const o = fakeOutbox();
    const s = sync(o.outbox);
    await s.during(async () => s.request());
    // Back to back: the next turn starts as the last ends (a flush at each turn's end drains twice here).
    await s.during(async () => {
      s.request();
      expect(o.drains).toEqual([]);
    });
    expect(o.drains).toEqual([]);
    await o.drained();
    expect(o.drains).toHaveLength(1);
  });

  it("drains once the thread has paused, with no further turn", async () => {
    const o = fakeOutbox();
    const s = sync(o.outbox);
    await s.during(async () => s.request());
    expect(o.drains).toEqual([]);
    await o.drained();
    expect(o.drains).toHaveLength(1);
  });

  it("drains at the turn's end when its first write has waited long", async () => {
    const o = fakeOutbox();
    const s = sync(o.outbox);
    vi.useFakeTimers({ toFake: ["Date"] });
    await s.during(async () => {
      s.request();
      vi.setSystemTime(Date.now() + 5_000);
    });
    expect(o.drains).toHaveLength(1);
  });

  it("drains a write made outside any turn at once", async () => {
    const o = fakeOutbox();
    sync(o.outbox).request();
    expect(o.drains).toHaveLength(1);
  });
});
