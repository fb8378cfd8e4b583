import type { UIMessage } from "ai";

/**
 * The message contract shared by the Worker, the web page and the scripts: a thread's messages are
 * AI SDK UI messages carrying this metadata. One copy, so the page cannot drift from the server.
 */
export type AssistantMetadata = {
  model: string;
  offline: boolean;
  usage?: { inputTokens?: number; outputTokens?: number; totalTokens?: number };
  /** A reply that did not finish: stopped by a client (what it wrote so far is kept), or failed, with the error a person can read. */
  outcome?: "stopped" | "error";
  error?: string;
};

/** A passage `hybrid_search` (and GET /api/v1/search) found. */
export type SearchHit = { documentId: string; chunkId: number; title: string; text: string; score: number };

/** What `hybrid_search` answers its model: the passages, or a failure it can read and explain. */
export type SearchToolOutput =
  | { status: "ok"; results: SearchHit[]; cached: boolean }
  | { status: "rate_limited"; retryAfterSeconds: number; message: string }
  | { status: "search_unavailable"; message: string };

export type ThreadMessage = UIMessage<AssistantMetadata>;

/** Longest text a user message may carry. */
export const MAX_MESSAGE_CHARS = 32_000;

/** A message's text: its text parts, joined by newlines. */
export const messageText = (m: { parts: readonly { type: string; text?: unknown }[] }) =>
  m.parts.flatMap((p) => (p.type === "text" && typeof p.text === "string" ? [p.text] : [])).join("\n");

/**
 * Markdown source as the plain text it reads as: a document's snippet, a quoted sentence. Drops
 * fences, headings, list and quote markers, emphasis, link and image syntax (keeping their text).
 */
export const markdownToText = (md: string) =>
  md
    .replace(/^[ \t]*(```|~~~).*$/gm, "")
    .replace(/^[ \t]*([-*_][ \t]*){3,}$/gm, "")
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/^[ \t]{0,3}(#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d+[.)][ \t]+)/gm, "")
    .replace(/(\*\*|\*|~~|`)(?=\S)([^\n]*?\S)\1/g, "$2")
    .replace(/(?<!\w)(__|_)(?=\S)([^\n]*?\S)\1(?!\w)/g, "$2")
    .replace(/[ \t]+/g, " ")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
