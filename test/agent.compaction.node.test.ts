import type { UIMessage } from "ai";
import { describe, expect, it } from "vitest";
import { historyRoom, isCut, KEEP_SHARE, offlineSummary, planCompaction, summaryInput, transcriptLine } from "../src/agent/compaction.ts";
import { contextBudget, DEFAULT_CONTEXT_BUDGETS } from "../src/agent/context-budget.ts";
import { messageTokens, textTokens } from "../src/agent/tokens.ts";

const user = (i: number, text = `question ${i}`): UIMessage => ({ id: `u${i}`, role: "user", parts: [{ type: "text", text }] });
const reply = (i: number, text = `answer ${i}`): UIMessage => ({ id: `a${i}`, role: "assistant", parts: [{ type: "text", text }] });
const withTool = (i: number, state = "output-available"): UIMessage => ({
  id: `a${i}`,
  role: "assistant",
  parts: [
    { type: "tool-hybrid_search", toolCallId: `c${i}`, state, input: { query: "q" }, ...(state === "output-available" && { output: { status: "ok", results: [] } }) } as never,
    { type: "text", text: "found" },
  ],
});
/** `turns` exchanges; every third reply calls a tool. */
const thread = (turns: number) => Array.from({ length: turns }, (_, i) => [user(i), i % 3 === 2 ? withTool(i) : reply(i)]).flat();
const ten = () => 10;
const suffixTokens = (messages: UIMessage[], from: number) => (messages.length - from) * 10;

describe("cut points", () => {
  it("fall only before a user message, never between a tool call and its result, and never after a call still waiting", () => {
    const m = thread(6);
    for (let i = 0; i < m.length; i++) expect(isCut(m, i), `at ${i}`).toBe(i > 0 && m[i]!.role === "user");
    const waiting = [user(0), withTool(0, "input-available"), user(1), reply(1)];
    expect(isCut(waiting, 2)).toBe(false);
    expect(isCut([user(0), withTool(0, "approval-requested"), user(1)], 2)).toBe(false);
  });

  it("every planned cut leaves each tool part whole on one side", () => {
    for (let turns = 2; turns < 40; turns++) {
      const m = thread(turns);
      const plan = planCompaction({ messages: m, tokens: ten, room: 100, cut: 0, summaryTokens: 0 });
      if (!plan) continue;
      expect(m[plan.to]!.role).toBe("user");
      expect(m[plan.to - 1]!.role).toBe("assistant");
    }
  });
});

describe("planCompaction", () => {
  it("leaves a context that fits alone", () => {
    expect(planCompaction({ messages: thread(4), tokens: ten, room: 80, cut: 0, summaryTokens: 0 })).toBeUndefined();
  });

  it("moves the cut in one step, far enough that the kept part takes at most KEEP_SHARE of the room", () => {
    const m = thread(20);
    const plan = planCompaction({ messages: m, tokens: ten, room: 200, cut: 0, summaryTokens: 0 })!;
    expect(suffixTokens(m, plan.to)).toBeLessThanOrEqual(200 * KEEP_SHARE);
    // The smallest such cut: one turn earlier would keep too much.
    expect(suffixTokens(m, plan.to - 2)).toBeGreaterThan(200 * KEEP_SHARE);
  });

  it("keeps the cut (so the prompt's prefix) still between compactions, for many turns", () => {
    const room = 200;
    let m = thread(20);
    let cut = planCompaction({ messages: m, tokens: ten, room, cut: 0, summaryTokens: 0 })!.to;
    const summaryTokens = 20;
    const cuts: number[] = [];
    for (let turn = 20; turn < 80; turn++) {
      m = [...m, user(turn), reply(turn)];
      const plan = planCompaction({ messages: m, tokens: ten, room, cut, summaryTokens });
      if (plan) cut = plan.to;
      cuts.push(cut);
    }
    // Sixty turns, a handful of moves: the cut changes on at most one turn in five.
    const moves = cuts.filter((c, i) => i > 0 && c !== cuts[i - 1]).length;
    expect(moves).toBeGreaterThan(0);
    expect(moves).toBeLessThanOrEqual(60 / 5);
    for (let i = 1; i < cuts.length; i++) expect(cuts[i]!).toBeGreaterThanOrEqual(cuts[i - 1]!);
  });

  it("counts the stored summary against the room", () => {
    const m = thread(5);
    expect(planCompaction({ messages: m, tokens: ten, room: 100, cut: 0, summaryTokens: 0 })).toBeUndefined();
    expect(planCompaction({ messages: m, tokens: ten, room: 100, cut: 0, summaryTokens: 10 })).toBeDefined();
  });

  it("keeps at least the turn's own message, even when it alone is over the share", () => {
    const m = [...thread(3), user(9, "x".repeat(4000))];
    const tokens = (x: UIMessage) => messageTokens(x);
    const plan = planCompaction({ messages: m, tokens, room: 300, cut: 0, summaryTokens: 0 })!;
    expect(plan.to).toBe(m.length - 1);
    expect(planCompaction({ messages: [user(0, "y".repeat(4000))], tokens, room: 300, cut: 0, summaryTokens: 0 })).toBeUndefined();
  });

  it("forced (the provider said too long): cuts further than the estimate asks, keeping at most half of what was kept", () => {
    const m = thread(10);
    expect(planCompaction({ messages: m, tokens: ten, room: 1000, cut: 0, summaryTokens: 0 })).toBeUndefined();
    const plan = planCompaction({ messages: m, tokens: ten, room: 1000, cut: 0, summaryTokens: 0, force: true })!;
    expect(suffixTokens(m, plan.to)).toBeLessThanOrEqual(100);
    const again = planCompaction({ messages: m, tokens: ten, room: 1000, cut: plan.to, summaryTokens: 5, force: true })!;
    expect(again.from).toBe(plan.to);
    expect(again.to).toBeGreaterThan(plan.to);
  });

  it("history room is the budget less what every request carries, never below a quarter of it", () => {
    expect(historyRoom(128_000, 5_600)).toBe(122_400);
    expect(historyRoom(8_192, 8_000)).toBe(2_048);
  });
});

describe("the offline summary", () => {
  it("is deterministic, one line per message with its first sentence, and counts what it covers", () => {
    const m = [user(0, "How many grams of coffee for a double shot? I have a new machine."), reply(0, "About 18 g. Grind fine."), withTool(1)];
    const a = offlineSummary(undefined, m, 500);
    expect(a).toBe(offlineSummary(undefined, m, 500));
    expect(a.split("\n")).toEqual([
      "Earlier in this conversation (3 messages):",
      "- User: How many grams of coffee for a double shot?",
      "- Assistant: About 18 g.",
      "- Assistant (used hybrid_search): found",
    ]);
  });

  it("folds into the earlier summary and stays within its token budget, keeping the thread's first lines and its newest", () => {
    let summary: string | undefined;
    for (let i = 0; i < 50; i++) summary = offlineSummary(summary, [user(i, `Topic number ${i} is about tides.`), reply(i)], 160);
    expect(textTokens(summary)).toBeLessThanOrEqual(160);
    const lines = summary!.split("\n");
    expect(lines.slice(0, 5)).toEqual([
      "Earlier in this conversation (100 messages):",
      "- User: Topic number 0 is about tides.",
      "- Assistant: answer 0",
      "- User: Topic number 1 is about tides.",
      "- …",
    ]);
    expect(lines.at(-1)).toBe("- Assistant: answer 49");
    expect(summary).not.toContain("Topic number 20 ");
    expect(lines.filter((l) => l === "- …").length).toBe(1);
  });
});

describe("the summarizer's input", () => {
  it("holds the earlier summary and the transcript, the newest messages when they do not all fit", () => {
    const m = Array.from({ length: 100 }, (_, i) => user(i, `line ${i} ${"word ".repeat(20)}`));
    const input = summaryInput("S0", m, 400);
    expect(input.startsWith("Summary so far:\nS0\n\nConversation to add:\n(")).toBe(true);
    expect(textTokens(input)).toBeLessThanOrEqual(420);
    expect(input).toContain("User: line 99 ");
    expect(input).not.toContain("User: line 0 ");
    expect(transcriptLine(withTool(3))).toBe("Assistant: found [called hybrid_search]");
  });
});

describe("context budgets", () => {
  const config = { CONTEXT_BUDGETS: {}, CONTEXT_BUDGET_TOKENS: 32_768 };
  it("match a model by its longest prefix; configuration overrides; the flag overrides both", () => {
    expect(contextBudget(config, "gpt-4o-mini-2024-07-18")).toBe(128_000);
    expect(contextBudget(config, "gpt-4.1-mini")).toBe(1_047_576);
    expect(contextBudget(config, "gpt-4")).toBe(8_192);
    expect(contextBudget(config, "gpt-4-turbo-preview")).toBe(128_000);
    expect(contextBudget(config, "o1-mini")).toBe(128_000);
    expect(contextBudget(config, "threadline-offline")).toBe(DEFAULT_CONTEXT_BUDGETS["threadline-offline"]);
    expect(contextBudget(config, "llama3.1:8b")).toBe(32_768);
    expect(contextBudget({ ...config, CONTEXT_BUDGETS: { "llama3.1": 8192, "gpt-4o": 64_000 } }, "llama3.1:8b")).toBe(8192);
    expect(contextBudget({ ...config, CONTEXT_BUDGETS: { "gpt-4o": 64_000 } }, "gpt-4o-mini")).toBe(64_000);
    expect(contextBudget(config, "gpt-4o", 5000)).toBe(5000);
  });
});

describe("token estimates", () => {
  it("count what a model reads: text, tool input and output; data parts count nothing", () => {
    expect(textTokens("")).toBe(0);
    expect(textTokens("a".repeat(400))).toBe(100);
    // Short words: the word count (x 1.3) is the larger estimate.
    expect(textTokens("a b c d e f g h i j")).toBe(13);
    const base = messageTokens(reply(0, "hello there"));
    expect(messageTokens({ parts: [...reply(0, "hello there").parts, { type: "data-compaction", data: { summarizedThrough: "x", messages: 4 } }] })).toBe(base);
    expect(messageTokens(withTool(1))).toBeGreaterThan(messageTokens(reply(1, "found")));
  });
});
