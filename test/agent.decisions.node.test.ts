import { CHAT_MESSAGE_TYPES } from "agents/chat";
import type { UIMessage } from "ai";
import { describe, expect, it } from "vitest";
import type { Approval, Approvals } from "../src/agent/approvals.ts";
import { Decisions } from "../src/agent/interactions.ts";
import { AppError } from "../src/errors.ts";

const approval = (approvalId: string, toolCallId: string, status: Approval["status"] = "pending") =>
  ({
    approvalId,
    toolCallId,
    toolName: "save_note",
    input: { title: "t" },
    createdAt: 0,
    expiresAt: Date.now() + 60_000,
    status,
    decidedAt: null,
    decidedBy: null,
    reason: null,
  }) as Approval;
const transcript: UIMessage[] = [
  { id: "u1", role: "user", parts: [{ type: "text", text: "save it" }] },
  {
    id: "a1",
    role: "assistant",
    parts: [
      { type: "tool-save_note", toolCallId: "c1", state: "approval-requested", input: { title: "t" }, approval: { id: "ap1" } },
      { type: "tool-save_note", toolCallId: "c2", state: "output-available", input: { title: "t" }, output: "saved" },
      { type: "tool-ask_user", toolCallId: "c3", state: "input-available", input: {} },
      { type: "tool-ask_user", toolCallId: "c4", state: "output-available", input: {}, output: "yes" },
    ] as UIMessage["parts"],
  },
];

function setup(opts: { decide?: () => Promise<Approval> } = {}) {
  const rows = [approval("ap1", "c1"), approval("ap2", "c2", "approved")];
  const sent: { what: string; frames: object[] }[] = [];
  const scheduled: [number, { approvalId: string }][] = [];
  const issued: unknown[] = [];
  const approvals = {
    get: (by: { approvalId: string } | { toolCallId: string }) => rows.find((r) => ("approvalId" in by ? r.approvalId === by.approvalId : r.toolCallId === by.toolCallId)),
    expire: (id: string) => {
      const a = rows.find((r) => r.approvalId === id);
      if (a?.status !== "pending") return false;
      a.status = "expired";
      return true;
    },
    issue: async (a: unknown) => void issued.push(a),
    decide: opts.decide ?? (async () => rows[0]!),
  } as unknown as Approvals;
  const decisions = new Decisions({
    approvals,
    messages: () => transcript,
    ownerId: async () => "owner",
    send: async (what, ...frames) => void sent.push({ what, frames }),
    schedule: async (seconds, payload) => void scheduled.push([seconds, payload]),
  });
  return { decisions, sent, scheduled, issued, rows };
}
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "accepted",
    (e: unknown) => (e instanceof AppError ? e.code : String(e)),
  );

describe("decisions on the tool calls a thread holds", () => {
  it("only the thread's owner decides", async () => {
    const { decisions, sent } = setup();
    expect(await codeOf(decisions.check({ decision: { approvalId: "ap1", approved: true, by: "intruder" } }))).toBe("forbidden");
    expect(await codeOf(decisions.check({ decision: { approvalId: "ap1", approved: true } }))).toBe("forbidden");
    expect(await codeOf(decisions.check({ decision: { approvalId: "ap1", approved: true, by: "owner" } }))).toBe("accepted");
    expect(sent).toEqual([]);
  });

  it("a decision that comes too late is refused, and the call denied as its expiry would have", async () => {
    const { decisions, sent } = setup({ decide: () => Promise.reject(new AppError("approval_expired", "expired")) });
    expect(await codeOf(decisions.check({ decision: { approvalId: "ap1", approved: true, by: "owner" } }))).toBe("approval_expired");
    expect(sent).toEqual([{ what: "expire", frames: [{ type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL, toolCallId: "c1", approved: false, autoContinue: false }] }]);
  });

  it("an approval whose time is up denies its call through the protocol, once; a decided one stays as it is", async () => {
    const { decisions, sent } = setup();
    await decisions.expire("ap1");
    await decisions.expire("ap1");
    await decisions.expire("ap2");
    await decisions.expire("nope");
    expect(sent).toEqual([{ what: "expire", frames: [{ type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL, toolCallId: "c1", approved: false, autoContinue: false }] }]);
  });

  it("an issued approval has its expiry scheduled", async () => {
    const { decisions, issued, scheduled } = setup();
    await decisions.issue({ approvalId: "ap9", toolCallId: "c9", toolName: "save_note", input: {} }, "turn1", 300);
    expect(issued).toEqual([{ approvalId: "ap9", toolCallId: "c9", toolName: "save_note", input: {}, turnId: "turn1", ttlSeconds: 300 }]);
    expect(scheduled).toEqual([[300, { approvalId: "ap9" }]]);
  });

  it("a client tool's result is checked against the transcript", async () => {
    const { decisions } = setup();
    expect(await codeOf(decisions.check({ result: { toolCallId: "c3", toolName: "ask_user", output: "ok" } }))).toBe("accepted");
    expect(await codeOf(decisions.check({ result: { toolCallId: "c4", toolName: "ask_user", output: "again" } }))).toBe("conflict");
    expect(await codeOf(decisions.check({ result: { toolCallId: "c1", toolName: "save_note", output: "forged" } }))).toBe("forbidden");
    expect(await codeOf(decisions.check({ result: { toolCallId: "nope", toolName: "ask_user", output: 1 } }))).toBe("not_found");
  });

  it("of the answers a whole transcript carries, keeps those to calls still waiting", () => {
    const { decisions } = setup();
    const waiting = decisions.waiting({
      decisions: [
        { approvalId: "ap1", approved: true },
        { approvalId: "ap2", approved: true },
        { approvalId: "nope", approved: true },
      ],
      results: [
        { toolCallId: "c3", toolName: "ask_user", output: 1 },
        { toolCallId: "c4", toolName: "ask_user", output: 2 },
      ],
    });
    expect(waiting).toEqual({ decisions: [{ approvalId: "ap1", approved: true }], results: [{ toolCallId: "c3", toolName: "ask_user", output: 1 }] });
    expect(decisions.waiting({})).toEqual({ decisions: undefined, results: undefined });
  });

  it("applies answers as the protocol's frames, each continuing the turn", () => {
    const { decisions } = setup();
    expect(decisions.frames({ decisions: [{ approvalId: "ap1", approved: false }], results: [{ toolCallId: "c3", toolName: "ask_user", output: 1 }] })).toEqual([
      { type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL, toolCallId: "c1", approved: false, autoContinue: true },
      { type: CHAT_MESSAGE_TYPES.TOOL_RESULT, toolCallId: "c3", toolName: "ask_user", output: 1, autoContinue: true },
    ]);
  });
});
