import type { Connection, WSMessage } from "agents";
import { CHAT_MESSAGE_TYPES } from "agents/chat";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { TurnGate } from "../src/agent/gate.ts";
import { FrameTaps } from "../src/agent/http-stream.ts";
import { HttpTurns } from "../src/agent/http-turns.ts";
import type { Decisions } from "../src/agent/interactions.ts";
import type { OutboxSync } from "../src/agent/outbox-sync.ts";
import type { Owner } from "../src/agent/owner.ts";
import { AppError } from "../src/errors.ts";

type Frame = { type: string; id?: string; [k: string]: unknown };
const response = (id: string, body: object | undefined, done = false) =>
  JSON.stringify({ type: CHAT_MESSAGE_TYPES.USE_CHAT_RESPONSE, id, body: body && JSON.stringify(body), done });
const delta = (text: string) => ({ type: "text-delta", id: "t", delta: text });
const sse = (...chunks: object[]) => [...chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`), "data: [DONE]\n\n"].join("");

function setup(opts: { refuse?: AppError; chat?: (connection: Connection, frame: Frame, http: HttpTurns) => Promise<void>; checks?: (answer: unknown) => void } = {}) {
  const taps = new FrameTaps();
  const calls: { connection: string; frame: Frame }[] = [];
  const admitted: { frame: Frame; body: unknown; keyHash?: string }[] = [];
  const claims: string[] = [];
  const waits: Promise<unknown>[] = [];
  let holds = 0;
  const gate = {
    admit: async (frame: Frame, body: unknown, _trace: unknown, keyHash?: string) => (
      admitted.push({ frame, body, keyHash }), opts.refuse ?? JSON.stringify({ ...frame, admitted: true })
    ),
  } as unknown as TurnGate;
  const sync = { during: async <T>(turn: () => Promise<T>) => (holds++, turn().finally(() => holds--)) } as unknown as OutboxSync;
  const decisions = {
    waiting: (a: { decisions?: { approvalId: string }[] }) => ({ decisions: a.decisions?.filter((d) => d.approvalId === "pending") }),
    check: async (answer: unknown) => opts.checks?.(answer),
    frames: (a: { decisions?: { approvalId: string; approved: boolean }[] }) =>
      (a.decisions ?? []).map((d) => ({ type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL, toolCallId: `call-${d.approvalId}`, approved: d.approved, autoContinue: true })),
  } as unknown as Decisions;
  const http: HttpTurns = new HttpTurns({
    env: {} as Env,
    threadId: () => "t1",
    waitUntil: (p) => void waits.push(p),
    taps,
    gate,
    sync,
    decisions,
    owner: { claim: async (id: string) => (claims.push(id), id) } as unknown as Owner,
    chat: async (connection: Connection, message: WSMessage) => {
      const frame = JSON.parse(message as string) as Frame;
      calls.push({ connection: connection.id, frame });
      await opts.chat?.(connection, frame, http);
    },
  });
  return { http, taps, calls, admitted, claims, waits, holds: () => holds };
}

afterEach(() => void vi.useRealTimers());

describe("a turn over HTTP", () => {
  it("runs the frame the gate admitted through the protocol, within the outbox's hold, streamed from the turn's frames", async () => {
    let held = 0;
    const t = setup({
      chat: async (connection, frame) => {
        held = t.holds();
        connection.send(response(frame.id!, delta("Hi")));
        t.taps.deliver(response(frame.id!, delta(" there")));
        t.taps.deliver(response(frame.id!, undefined, true));
      },
    });
    const turn = await t.http.turn({ text: "hello", messageId: "m1", ownerId: "u1", keyHash: "k1" });
    if (!turn.ok) throw new Error("refused");
    expect(turn.userMessageId).toBe("m1");
    expect(t.claims).toEqual(["u1"]);
    const [{ frame, body, keyHash }] = t.admitted as [(typeof t.admitted)[0]];
    expect(body).toEqual({ messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: "hello" }] }], trigger: "submit-message" });
    expect(frame).toMatchObject({ type: CHAT_MESSAGE_TYPES.USE_CHAT_REQUEST, init: { method: "POST" } });
    expect(keyHash).toBe("k1");
    expect(await new Response(turn.stream).text()).toBe(sse(delta("Hi"), delta(" there")));
    await Promise.all(t.waits);
    expect(t.calls).toEqual([{ connection: `http:${frame.id}`, frame: { ...frame, admitted: true } }]);
    expect(held).toBe(1);
    expect(t.holds()).toBe(0);
  });

  it("a regenerate carries no message", async () => {
    const t = setup({ refuse: new AppError("validation_failed", "there is nothing to regenerate") });
    const turn = await t.http.turn({ trigger: "regenerate-message", ownerId: "u1" });
    expect(t.admitted[0]!.body).toEqual({ messages: [], trigger: "regenerate-message" });
    expect(turn).toEqual({ ok: false, error: { ok: false, code: "validation_failed", message: "there is nothing to regenerate" } });
    expect(t.calls).toEqual([]);
  });

  it("a failed run ends its stream with the error", async () => {
    const t = setup({ chat: () => Promise.reject(new AppError("database_unavailable", "the database is down")) });
    const turn = await t.http.turn({ text: "hello", ownerId: "u1" });
    if (!turn.ok) throw new Error("refused");
    expect(await new Response(turn.stream).text()).toBe(sse({ type: "error", errorText: "the database is down" }));
  });

  it("a reader gone before the reply began stops the turn, which stops as it starts; one gone later does not", async () => {
    const t = setup();
    const early = await t.http.turn({ text: "one", ownerId: "u1" });
    if (!early.ok) throw new Error("refused");
    const id = t.admitted[0]!.frame.id!;
    t.taps.deliver(response(id, { type: "start" }));
    await early.stream.cancel();
    await vi.waitFor(() =>
      expect(t.calls.at(-1)).toMatchObject({ connection: expect.stringMatching(/^http:cancel:/), frame: { type: CHAT_MESSAGE_TYPES.CHAT_REQUEST_CANCEL, id } }),
    );
    expect(t.http.cancelled(id)).toBe(true);
    expect(t.http.cancelled(id)).toBe(false);

    const late = await t.http.turn({ text: "two", ownerId: "u1" });
    if (!late.ok) throw new Error("refused");
    const lateId = t.admitted[1]!.frame.id!;
    t.taps.deliver(response(lateId, delta("begun")));
    const calls = t.calls.length;
    await late.stream.cancel();
    await Promise.resolve();
    expect(t.calls.length).toBe(calls);
    expect(t.http.cancelled(lateId)).toBe(false);
  });

  it("a stop without a turn is false", async () => {
    const t = setup();
    expect(await t.http.cancel(undefined)).toBe(false);
    expect(t.calls).toEqual([]);
  });
});

describe("answers to held tool calls over HTTP", () => {
  it("stream the turn they continue", async () => {
    const t = setup({
      chat: async (_connection, _frame, http) => {
        http.continued("r2");
        t.taps.deliver(response("r2", delta("done")));
        t.taps.deliver(response("r2", undefined, true));
      },
    });
    const r = await t.http.interact({ decisions: [{ approvalId: "a1", approved: true }], by: "u1" });
    if (!r.ok || !r.stream) throw new Error("no stream");
    expect(t.calls).toEqual([
      { connection: expect.stringMatching(/^http:interact:/), frame: { type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL, toolCallId: "call-a1", approved: true, autoContinue: true } },
    ]);
    expect(await new Response(r.stream).text()).toBe(sse(delta("done")));
  });

  it("are null when nothing continues, and a continuation later is not theirs", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout"] });
    const t = setup();
    const pending = t.http.interact({ decisions: [{ approvalId: "a1", approved: false }], by: "u1" });
    await vi.advanceTimersByTimeAsync(2000);
    expect(await pending).toEqual({ ok: true, stream: null });
    t.http.continued("r3");
    expect(t.taps.active).toBe(false);
  });

  it("are refused, and nothing applied, when a check fails", async () => {
    const t = setup({
      checks: () => {
        throw new AppError("forbidden", "only the thread's owner decides on its tool calls");
      },
    });
    expect(await t.http.interact({ decisions: [{ approvalId: "a1", approved: true }], by: "other" })).toEqual({
      ok: false,
      error: { ok: false, code: "forbidden", message: "only the thread's owner decides on its tool calls" },
    });
    expect(t.calls).toEqual([]);
  });

  it("sent with a whole transcript, are refused when none answers a call still waiting", async () => {
    const t = setup();
    const r = await t.http.interact({ decisions: [{ approvalId: "settled", approved: true }], by: "u1", echoes: "skip" });
    expect(r).toMatchObject({ ok: false, error: { code: "validation_failed" } });
    expect(t.calls).toEqual([]);
  });
});
