import { streamText, type UIMessage } from "ai";
import { getConfig } from "../config.ts";
import { withDb } from "../db/client.ts";
import type { AppliedOps } from "../db/messages.ts";
import { setAutoTitle } from "../db/threads.ts";
import { flagsFor } from "../flags/index.ts";
import { markdownToText, messageText } from "../messages.ts";
import { describeError, log } from "../observability/log.ts";
import { recordCall } from "./context-window.ts";
import { chatModel } from "./model.ts";

/** The frame every client on a thread gets when the thread is titled for its owner. */
export type ThreadTitleFrame = { type: "thread_title"; threadId: string; title: string };

export const MAX_AUTO_TITLE_CHARS = 80;
const TITLE_WORDS = 6;
const TITLE_TIMEOUT_MS = 15_000;
const DONE_KEY = "tl_title_done";
const TITLE_PROMPT = "You name chat conversations. Answer with a title for the conversation you are given: at most six words, plain text, no quotes, no markdown, no final period.";

// Openers that say nothing about the subject ("Hi! Can you tell me about tides?" is about tides).
const FILLER =
  /^(?:(?:hi|hello|hey|hiya|yo|thanks|thank you|ok|okay|please|so|well)\b[\s,!.]*|(?:can|could|would|will) you\b\s*|(?:please\s+)?(?:tell|show|help|give) me\b\s*|i (?:want|need|would like|'d like) (?:to|you to)?\b\s*|(?:what|how) about\b\s*)+/i;

const clip = (s: string, maxChars: number) => {
  if (s.length <= maxChars) return s;
  const cut = s.slice(0, maxChars + 1);
  return cut.slice(0, Math.max(cut.lastIndexOf(" "), Math.floor(maxChars / 2))).trimEnd();
};

/**
 * A model's answer as a title: its first line, plain text (markdown, a "Title:" label and
 * surrounding quotes removed), one line of at most MAX_AUTO_TITLE_CHARS cut at a word. Empty when
 * nothing is left. Pure.
 */
export function plainTitle(raw: string): string {
  const line =
    markdownToText(raw)
      .split("\n")
      .map((l) => l.trim())
      .find(Boolean) ?? "";
  const bare = line
    .replace(/^title\s*:\s*/i, "")
    .replace(/[*_`#~<>[\]]/g, "")
    .replace(/^["'“”‘’«»\s]+|["'“”‘’«»\s]+$/g, "")
    .replace(/[.!,;:\s]+$/, "")
    .replace(/\s+/g, " ")
    .trim();
  return clip(bare, MAX_AUTO_TITLE_CHARS);
}

/**
 * The offline title: the first sentence of the user's first message, without greetings and
 * politeness, its first TITLE_WORDS words, capitalised; the reply's when the question has none;
 * "New conversation" when neither has words. Deterministic. Pure.
 */
export function heuristicTitle(userText: string, replyText = ""): string {
  for (const text of [userText, replyText]) {
    const flat = markdownToText(text)
      .replace(/```[\s\S]*?```/g, " ")
      .replace(/https?:\/\/\S+/g, " ")
      .replace(/\s+/g, " ")
      .trim()
      .replace(FILLER, "");
    const sentence = (/^(.+?[.!?])(\s|$)/.exec(flat)?.[1] ?? flat).replace(/[?!.,;:]+$/, "").trim();
    const words = sentence
      .split(" ")
      .filter((w) => /[\p{L}\p{N}]/u.test(w))
      .slice(0, TITLE_WORDS)
      .join(" ");
    const title = plainTitle(words);
    if (title) return title.charAt(0).toUpperCase() + title.slice(1);
  }
  return "New conversation";
}

/** The first exchange: the first user message with text and the first reply with text after it. */
export function firstExchange(messages: readonly UIMessage[]): { user: string; reply: string } | undefined {
  const u = messages.findIndex((m) => m.role === "user" && messageText(m).trim());
  const reply = u < 0 ? undefined : messages.slice(u + 1).find((m) => m.role === "assistant" && messageText(m).trim());
  return reply ? { user: messageText(messages[u]!), reply: messageText(reply) } : undefined;
}

type Host = {
  env: Env;
  threadId: () => string;
  ownerId: () => Promise<string>;
  storage: DurableObjectStorage;
  broadcast: (frame: string) => void;
  waitUntil: (p: Promise<unknown>) => void;
};

/**
 * Titles a thread after its first exchange, once, in the background (never on a turn's path): when
 * Postgres says its owner never titled it (as the outbox's write of the exchange reports: no read of
 * its own), writes a title (SUMMARY_MODEL or the turn's model; offline, the heuristic; the heuristic
 * too when the model fails) with a conditional update that a title of the owner's always wins over,
 * before or after, and tells every client on the thread. Until it is done (Postgres down, say),
 * every later write tries again.
 */
export class Titles {
  #running: Promise<void> | undefined;
  #done = false;
  #exchange: { user: string; reply: string } | undefined;
  #thread: Pick<AppliedOps, "title" | "titleSource"> | undefined;

  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /** Waits for a title in progress (a thread being deleted lets it finish first). */
  settled(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  afterTurn(messages: readonly UIMessage[]): void {
    if (this.#done || this.#exchange) return;
    this.#exchange = firstExchange(messages);
    this.#start();
  }

  /** The thread's title as the outbox's last write found it in Postgres (the write of the exchange comes after the turn, or before). */
  observed(thread: Pick<AppliedOps, "title" | "titleSource">): void {
    this.#thread = thread;
    this.#start();
  }

  #start() {
    const [exchange, thread] = [this.#exchange, this.#thread];
    if (this.#done || this.#running || !exchange || !thread) return;
    this.#thread = undefined;
    this.#running = this.#title(exchange, thread).finally(() => (this.#running = undefined));
    this.host.waitUntil(this.#running);
  }

  async #title(exchange: { user: string; reply: string }, thread: Pick<AppliedOps, "title" | "titleSource">) {
    const threadId = this.host.threadId();
    try {
      if (await this.host.storage.get(DONE_KEY)) return void (this.#done = true);
      if (thread.title === null && thread.titleSource === null) {
        const title = await this.#write(exchange);
        const titled = await withDb(this.host.env, (db) => setAutoTitle(db, threadId, title));
        if (titled) {
          this.host.broadcast(JSON.stringify({ type: "thread_title", threadId, title } satisfies ThreadTitleFrame));
          log("info", "thread_titled", { threadId, chars: title.length });
        }
      }
      await this.host.storage.put(DONE_KEY, true);
      this.#done = true;
    } catch (err) {
      log("warn", "thread_title_failed", { threadId, error: describeError(err) });
    }
  }

  async #write(exchange: { user: string; reply: string }): Promise<string> {
    const config = getConfig(this.host.env);
    const fallback = heuristicTitle(exchange.user, exchange.reply);
    if (config.offline) return fallback;
    try {
      const flags = await flagsFor(this.host.env, { userId: await this.host.ownerId(), threadId: this.host.threadId() });
      const { model, id } = chatModel(config, config.SUMMARY_MODEL ?? flags.chat_model);
      const result = streamText({
        model,
        system: TITLE_PROMPT,
        messages: [
          { role: "user", content: `User: ${exchange.user.slice(0, 2000)}\n\nAssistant: ${exchange.reply.slice(0, 2000)}` },
          { role: "user", content: "Write a title for this conversation." },
        ],
        maxOutputTokens: 32,
        maxRetries: 1,
        abortSignal: AbortSignal.timeout(TITLE_TIMEOUT_MS),
        onError: () => {},
      });
      const title = plainTitle(await result.text);
      await recordCall(this.host, { turnId: `title:${this.host.threadId()}`, kind: "title", model: id, usage: await result.totalUsage });
      return title || fallback;
    } catch (err) {
      log("warn", "thread_title_model_failed", { threadId: this.host.threadId(), error: describeError(err) });
      return fallback;
    }
  }
}
