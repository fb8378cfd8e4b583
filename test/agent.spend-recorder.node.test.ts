import { afterEach, describe, expect, it, vi } from "vitest";
import type { CallSpend } from "../src/authority/spend-ledger.ts";
import { spendRecorder } from "../src/agent/spend-recorder.ts";

type Call = { turnId: string; calls: CallSpend[]; final: boolean };

/** A recorder whose authority is a stand-in that keeps what it is told and answers `room`. */
function recorder(reserved: number | undefined, room = true) {
  const told: Call[] = [];
  const authority = { recordSpend: async (c: Call) => (told.push(c), { room }) };
  const env = { UserAuthority: { idFromName: (n: string) => n, get: () => authority } } as unknown as Env;
  const r = spendRecorder({ env, ownerId: "u", threadId: "t", turnId: "turn", kind: "turn", reserved }, "m");
  return { r, told };
}
const step = (inputTokens: number, outputTokens: number) => ({ usage: { inputTokens, outputTokens } }) as never;

describe("spend recorder", () => {
  afterEach(() => vi.restoreAllMocks());

  it("within its reservation a turn asks nothing between steps; the last records every step once, each at its own time", async () => {
    const now = vi.spyOn(Date, "now").mockReturnValue(1_000);
    const { r, told } = recorder(100);
    expect(await r.record([step(30, 10)], false)).toBe(true);
    expect(told).toEqual([]);
    now.mockReturnValue(2_000);
    expect(await r.record([step(30, 10), step(40, 10)], true)).toBe(true);
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({
      final: true,
      calls: [
        { entryId: "turn:0", inputTokens: 30 },
        { entryId: "turn:1", inputTokens: 40 },
      ],
    });
    expect(told[0]!.calls.map((c) => c.at)).toEqual([1_000, 2_000]);
    expect(await r.record([step(30, 10), step(40, 10)], true)).toBe(false);
    expect(told).toHaveLength(1);
  });

  it("past its reservation each step asks the authority for room, and a turn without room stops", async () => {
    const { r, told } = recorder(50, false);
    expect(await r.record([step(30, 10)], false)).toBe(true);
    expect(await r.record([step(30, 10), step(40, 10)], false)).toBe(false);
    expect(told).toEqual([
      { turnId: "turn", threadId: "t", final: false, calls: [expect.objectContaining({ entryId: "turn:0" }), expect.objectContaining({ entryId: "turn:1" })] },
    ]);
    await r.record([step(30, 10), step(40, 10)], true);
    expect(told.at(-1)).toMatchObject({ final: true, calls: [] });
  });

  it("a turn the gate did not admit (no reservation known) asks after every step", async () => {
    const { r, told } = recorder(undefined);
    await r.record([step(1, 1)], false);
    expect(told).toHaveLength(1);
  });
});
