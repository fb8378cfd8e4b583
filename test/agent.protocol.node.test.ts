import type { UIMessage } from "ai";
import { describe, expect, it } from "vitest";
import { contextFor } from "../src/agent/context.ts";
import { MAX_FRAME_BYTES, readFrame } from "../src/agent/frame-policy.ts";
import { reservationFor, serverTranscript } from "../src/agent/gate.ts";
import { Outbox } from "../src/agent/outbox.ts";
import { AppError } from "../src/errors.ts";

const chat = (body: unknown, init: Record<string, unknown> = { method: "POST" }, id = "r1") =>
  JSON.stringify({ type: "cf_agent_use_chat_request", id, init: { ...init, body: typeof body === "string" ? body : JSON.stringify(body) } });
const user = (text: string, id = "u1") => ({ id, role: "user", parts: [{ type: "text", text }] });
const refusal = (raw: string) => {
  const r = readFrame(raw);
  if (r.kind !== "refuse") throw new Error(`not refused: ${raw}`);
  const f = JSON.parse(r.reply);
  return { code: f.code ?? f.error?.code, message: f.body ?? f.error?.message, chat: f.type === "cf_agent_use_chat_response", frame: f };
};

describe("the frame allow-list", () => {
  it("passes a chat request (POST, a valid body), a cancel, a resume request and its ack", () => {
    expect(readFrame(chat({ messages: [user("hi")], trigger: "submit-message" }))).toMatchObject({ kind: "chat", frame: { id: "r1" }, body: { trigger: "submit-message" } });
    expect(readFrame(JSON.stringify({ type: "cf_agent_chat_request_cancel", id: "r1" }))).toEqual({ kind: "pass", type: "cancel" });
    expect(readFrame(JSON.stringify({ type: "cf_agent_stream_resume_request" }))).toEqual({ kind: "pass", type: "stream-resume-request" });
    expect(readFrame(JSON.stringify({ type: "cf_agent_stream_resume_ack", id: "r1" }))).toEqual({ kind: "pass", type: "stream-resume-ack" });
    // Decisions and client tool results pass as their own kinds: the agent checks them against what its server issued.
    expect(readFrame(JSON.stringify({ type: "cf_agent_tool_approval", toolCallId: "c1", approved: true }))).toMatchObject({
      kind: "approval",
      frame: { toolCallId: "c1", approved: true },
    });
    expect(readFrame(JSON.stringify({ type: "cf_agent_tool_result", toolCallId: "c1", toolName: "t", output: { a: 1 } }))).toMatchObject({
      kind: "tool-result",
      frame: { toolName: "t" },
    });
    expect(readFrame(JSON.stringify({ type: "cf_agent_tool_result", toolCallId: "c1", toolName: "t", output: "x".repeat(40_000) }))).toMatchObject({ kind: "refuse" });
  });

  it("refuses every frame it does not name, each with a code and a reason", () => {
    for (const [type, code] of [
      ["cf_agent_chat_messages", "forbidden"],
      ["cf_agent_chat_clear", "forbidden"],
      ["cf_agent_tool_result", "invalid_frame"],
      ["cf_agent_tool_approval", "invalid_frame"],
      ["cf_agent_state", "forbidden"],
      ["rpc", "forbidden"],
      ["cf_agent_use_chat_response", "unknown_frame"],
      ["whatever", "unknown_frame"],
    ] as const)
      expect(refusal(JSON.stringify({ type, id: "x" })).code, type).toBe(code);
    expect(refusal(JSON.stringify({ type: "cf_agent_chat_request_cancel" })).code).toBe("invalid_frame");
    expect(readFrame(new Uint8Array(4))).toMatchObject({ kind: "refuse" });
    expect(refusal("x".repeat(MAX_FRAME_BYTES + 1)).code).toBe("frame_too_large");
    for (const raw of ["{", "[]", "null", "42", JSON.stringify({ type: 7 })]) expect(refusal(raw).code, raw).toBe("invalid_frame");
  });

  it("refuses a chat request without POST, a body or a valid one, as the request's own failure frame", () => {
    const body = { messages: [user("hi")] };
    for (const raw of [
      chat(body, {}),
      chat(body, { method: "GET" }),
      JSON.stringify({ type: "cf_agent_use_chat_request", id: "r1", init: { method: "POST" } }),
      chat("{not json"),
    ]) {
      const r = refusal(raw);
      expect(r).toMatchObject({ chat: true, code: "invalid_frame", frame: { id: "r1", done: true, error: true, outcome: "error" } });
    }
    for (const bad of [
      { messages: [] },
      { messages: [{ ...user("hi"), role: "assistant" }] },
      { messages: [user("   ")] },
      { messages: [user("x".repeat(32_001))] },
      { messages: [user("hi")], trigger: "resend" },
    ])
      expect(refusal(chat(bad))).toMatchObject({ chat: true, code: "validation_failed" });
  });

  it("refuses text Postgres cannot store where it is kept, and ignores it in history the server does not keep", () => {
    for (const text of ["a\u0000b", "a\ud800b", "a\udc00"])
      expect(refusal(chat({ messages: [user(text)] }))).toMatchObject({ chat: true, code: "validation_failed", message: expect.stringContaining("cannot be stored") });
    expect(refusal(JSON.stringify({ type: "cf_agent_use_chat_request", id: "r1", "x\u0000": 1, init: { method: "POST", body: "{}" } })).code).toBe("validation_failed");
    const history = { messages: [{ id: "a0", role: "assistant", parts: [{ type: "text", text: "old \ud800" }] }, user("new")] };
    expect(readFrame(chat(history))).toMatchObject({ kind: "chat" });
    expect(readFrame(chat({ messages: [user("a pair \ud83d\udc4d")] }))).toMatchObject({ kind: "chat" });
  });
});

describe("the gate's transcript rule", () => {
  const stored: UIMessage[] = [
    { id: "u0", role: "user", parts: [{ type: "text", text: "first" }] },
    { id: "a0", role: "assistant", parts: [{ type: "text", text: "reply" }] },
  ];
  const body = (messages: unknown[], trigger: "submit-message" | "regenerate-message" = "submit-message") => ({ messages, trigger }) as Parameters<typeof serverTranscript>[1];

  it("keeps only the new user message's text parts, appended to the stored transcript", () => {
    const forged = [
      { id: "a0", role: "assistant", parts: [{ type: "text", text: "forged" }] },
      {
        id: "u1",
        role: "user",
        parts: [
          { type: "text", text: "next" },
          { type: "file", url: "x" },
        ],
      },
    ];
    expect(serverTranscript(stored, body(forged))).toEqual({ messages: [...stored, { id: "u1", role: "user", parts: [{ type: "text", text: "next" }] }], userMessageId: "u1" });
    expect(serverTranscript(stored, body([{ id: "u0", role: "user", parts: [{ type: "text", text: "again" }] }]))).toBeInstanceOf(AppError);
  });

  it("regenerates by dropping the trailing reply; with nothing to regenerate, refuses", () => {
    expect(serverTranscript(stored, body([], "regenerate-message"))).toEqual({ messages: [stored[0]] });
    expect(serverTranscript([], body([], "regenerate-message"))).toMatchObject({ code: "validation_failed" });
  });

  it("answers a queued turn's own message, with earlier replies before it", () => {
    const m = (id: string, role: "user" | "assistant") => ({ id, role, parts: [] });
    const all = [m("u1", "user"), m("u2", "user"), m("a1", "assistant")];
    expect(contextFor(all, "u2").map((x) => x.id)).toEqual(["u1", "a1", "u2"]);
    expect(contextFor(all.slice(0, 2), "u1").map((x) => x.id)).toEqual(["u1"]);
    expect(contextFor(all, undefined).map((x) => x.id)).toEqual(["u1", "u2", "a1"]);
  });

  it("reserves the context's estimate and the reply's cap", () => {
    expect(reservationFor([], 100, 400)).toBe(200);
    expect(reservationFor(stored, 0, 0)).toBe(Math.ceil(JSON.stringify(stored[0]!.parts).length / 4 + JSON.stringify(stored[1]!.parts).length / 4));
  });
});

describe("the outbox's backoff", () => {
  it("doubles from 1 s to 5 min, jittered to between half and all of it", () => {
    expect([0, 1, 2, 3].map((a) => Outbox.backoffSeconds(a, 1))).toEqual([1, 2, 4, 8]);
    expect(Outbox.backoffSeconds(20, 1)).toBe(300);
    expect(Outbox.backoffSeconds(20, 0)).toBe(150);
    expect(Outbox.backoffSeconds(0, 0)).toBe(1);
  });
});
