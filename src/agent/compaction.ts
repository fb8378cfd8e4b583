import type { UIMessage } from "ai";
import { messageText } from "../messages.ts";
import { textTokens } from "./tokens.ts";

/**
 * Where a turn's context is cut, and what replaces the part before the cut: pure, so the rules are
 * tested in Node (test/agent.compaction.node.test.ts). The agent's side (storage, the summarizer)
 * is ./context-window.ts.
 *
 * The model sees [summary of messages 0..cut) + messages cut..end. The cut stays where it is while
 * that fits the budget, so between compactions every turn sends the same prefix (provider prompt
 * caches keep working); when it no longer fits, the cut moves forward in one step, far enough that
 * the kept part takes at most KEEP_SHARE of the room, and the next move is many turns away.
 */

/** After a compaction the kept messages take at most this share of the room; the summary at most SUMMARY_SHARE. */
export const KEEP_SHARE = 0.4;
export const SUMMARY_SHARE = 0.15;
/** A retry after the provider's context-length error keeps at most this share of what the failed request kept. */
export const RETRY_SHARE = 0.5;

/** Tokens the history may take: the budget less what every request carries (system prompt, tools, the longest reply), never below a quarter of it. */
export const historyRoom = (budget: number, reserved: number) => Math.max(budget - reserved, Math.floor(budget / 4));

const pendingTool = (m: UIMessage) =>
  m.parts.some(
    (p) => (p.type.startsWith("tool-") || p.type === "dynamic-tool") && !["output-available", "output-error", "output-denied"].includes((p as { state?: string }).state ?? ""),
  );

/**
 * May the context start at messages[i] (everything before it summarized)? Only at a user message,
 * so a turn's tool calls and their results (inside its assistant messages) stay on one side, and
 * never right after an assistant message still waiting for a tool's result (an approval, a client
 * tool). The last user message (the turn's own) is always kept.
 */
export function isCut(messages: readonly UIMessage[], i: number): boolean {
  return i > 0 && i < messages.length && messages[i]!.role === "user" && !pendingTool(messages[i - 1]!);
}

export type CompactionPlan = { from: number; to: number };

/**
 * The compaction a turn needs, or undefined when its context fits (or nothing can be cut). `cut`
 * is where the context starts now (after the stored summary's last message), `summaryTokens` what
 * that summary takes. `force`: the provider refused the context as too long although the estimate
 * fitted; the new cut keeps at most RETRY_SHARE of what was kept.
 */
export function planCompaction(input: {
  messages: readonly UIMessage[];
  tokens: (m: UIMessage) => number;
  room: number;
  cut: number;
  summaryTokens: number;
  force?: boolean;
}): CompactionPlan | undefined {
  const { messages, tokens, room, cut } = input;
  const suffix: number[] = new Array(messages.length + 1).fill(0);
  for (let i = messages.length - 1; i >= cut; i--) suffix[i] = suffix[i + 1]! + tokens(messages[i]!);
  if (!input.force && input.summaryTokens + suffix[cut]! <= room) return undefined;
  const keep = Math.floor(input.force ? Math.min(room * KEEP_SHARE, suffix[cut]! * RETRY_SHARE) : room * KEEP_SHARE);
  let last: number | undefined;
  for (let i = cut + 1; i < messages.length; i++) {
    if (!isCut(messages, i)) continue;
    if (suffix[i]! <= keep) return { from: cut, to: i };
    last = i;
  }
  // Even the last turn alone is over the share: keep only it.
  return last === undefined ? undefined : { from: cut, to: last };
}

const ROLE = { user: "User", assistant: "Assistant", system: "System" } as const;
const toolNames = (m: UIMessage) =>
  m.parts.flatMap((p) => (p.type.startsWith("tool-") ? [p.type.slice(5)] : p.type === "dynamic-tool" ? [(p as { toolName: string }).toolName] : []));

/** One message as a transcript line for a summarizer: its text (at most `maxChars`), and the tools it called. */
export function transcriptLine(m: UIMessage, maxChars = 2000): string {
  const text = messageText(m).replace(/\s+/g, " ").trim();
  const tools = toolNames(m);
  const clipped = text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
  return `${ROLE[m.role]}: ${clipped}${tools.length ? ` [called ${tools.join(", ")}]` : ""}`.trim();
}

/**
 * What a summarizer model reads: the earlier summary, then the transcript of the messages to fold
 * in, newest kept when they do not fit `maxTokens` (the oldest are then said to be left out).
 */
export function summaryInput(previous: string | undefined, messages: readonly UIMessage[], maxTokens: number): string {
  const lines = messages.map((m) => transcriptLine(m));
  let budget = maxTokens - textTokens(previous);
  let start = lines.length;
  while (start > 0 && budget - textTokens(lines[start - 1]) > 0) budget -= textTokens(lines[--start]);
  const omitted = start > 0 ? `(${start} older messages left out)\n` : "";
  return `${previous ? `Summary so far:\n${previous}\n\n` : ""}Conversation to add:\n${omitted}${lines.slice(start).join("\n")}`;
}

const firstSentence = (text: string, maxChars: number) => {
  const flat = text.replace(/\s+/g, " ").trim();
  const sentence = /^(.+?[.!?])(\s|$)/.exec(flat)?.[1] ?? flat;
  return sentence.length > maxChars ? `${sentence.slice(0, maxChars - 1).trimEnd()}…` : sentence;
};

const HEADER = /^Earlier in this conversation \((\d+) messages?\):$/;

/** Lines of the offline summary always kept from the start of a thread: often what it is about. */
const HEAD_LINES = 3;
const ELIDED = "- …";

/**
 * The offline summary: deterministic, no model. One line per message with text (the role and its
 * first sentence), appended to the earlier summary's lines. When the whole would pass `maxTokens`,
 * the first HEAD_LINES lines and the newest that fit are kept, with "- …" between. The header
 * counts every message covered.
 */
export function offlineSummary(previous: string | undefined, messages: readonly UIMessage[], maxTokens: number): string {
  const prevLines = previous?.split("\n") ?? [];
  const covered = Number(HEADER.exec(prevLines[0] ?? "")?.[1] ?? 0) + messages.length;
  const lines = [
    ...prevLines.slice(HEADER.test(prevLines[0] ?? "") ? 1 : 0).filter((l) => l.startsWith("- ") && l !== ELIDED),
    ...messages.flatMap((m) => {
      const text = messageText(m);
      const tools = toolNames(m);
      if (!text.trim() && !tools.length) return [];
      return [`- ${ROLE[m.role]}${tools.length ? ` (used ${tools.join(", ")})` : ""}: ${text.trim() ? firstSentence(text, 160) : "…"}`];
    }),
  ];
  const header = `Earlier in this conversation (${covered} messages):`;
  const total = (ls: string[]) => ls.reduce((n, l) => n + textTokens(l) + 1, textTokens(header));
  if (total(lines) <= maxTokens) return [header, ...lines].join("\n");
  const head = lines.slice(0, HEAD_LINES);
  let budget = maxTokens - total([...head, ELIDED]);
  let start = lines.length;
  while (start > HEAD_LINES && budget - textTokens(lines[start - 1]) - 1 >= 0) budget -= textTokens(lines[--start]) + 1;
  return [header, ...head, ELIDED, ...lines.slice(start)].join("\n");
}

/** How a summary enters the model's context: a second system instruction, after the system prompt and before every message. */
export const summaryText = (text: string) => `Summary of the earlier part of this conversation (those messages are not shown again):\n${text}`;

/** What a turn's client is told when its thread was compacted for this turn (the data part `data-compaction`). */
export type Compaction = { summarizedThrough: string; messages: number };
/** A turn's context as the model gets it (the messages, and the summary of those before them), and the compaction made for it, if one was. */
export type TurnWindow = { context: UIMessage[]; summary?: string; compaction?: Compaction };
