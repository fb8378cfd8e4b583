import { streamText, type LanguageModelUsage, type UIMessage } from "ai";
import { userAuthority } from "../authority/client.ts";
import { getConfig, type Config } from "../config.ts";
import type { SummaryRecord } from "../db/messages.ts";
import type { Flags } from "../flags/index.ts";
import { describeError, log } from "../observability/log.ts";
import { historyRoom, offlineSummary, planCompaction, SUMMARY_SHARE, summaryInput, summaryText, type TurnWindow } from "./compaction.ts";
import { contextBudget, turnBudget } from "./context-budget.ts";
import { chatModel } from "./model.ts";
import { OFFLINE_MODEL_ID } from "./offline-model.ts";
import { textTokens, tokensOf } from "./tokens.ts";

/**
 * What every request carries besides the history: the system prompt and the tools' schemas. The
 * built-in tools' schemas are about 600 tokens as JSON; the rest is headroom for MCP tools and the
 * estimate's error (a provider's context-length error still compacts further and retries).
 */
const FIXED_TOKENS = 1500;
const SUMMARY_TIMEOUT_MS = 30_000;
const SUMMARY_PROMPT =
  "You compress chat transcripts. Write a summary of the conversation you are given so an assistant can carry it on without it: " +
  "what the user wants, facts, names and numbers they gave, what was decided or answered, and what is still open. Merge it with the summary so far, if there is one. " +
  "Plain text, no preamble, no markdown headings; only what the transcript says.";

type Host = { env: Env; sql: SqlStorage; threadId: () => string; ownerId: () => Promise<string> };
type Row = { id: string; through_id: string; messages: number; text: string; model: string; tokens: number; created_at: number };

const record = (r: Row): SummaryRecord => ({ id: r.id, throughId: r.through_id, count: r.messages, text: r.text, model: r.model, tokens: r.tokens, createdAt: r.created_at });

/**
 * A thread's context window, in its agent: before each turn, whether the history fits the model's
 * budget, and when it does not, a summary of its oldest part (./compaction.ts says where to cut).
 * Everything is read from and written to the agent's own storage (tl_summaries), so no Postgres is
 * on the way to the model; summaries reach Postgres later (`unsynced`). A summary replaces messages
 * in the model's context only: the transcript, history, exports and the API keep every message.
 * The summary is written by SUMMARY_MODEL (or the turn's model), offline by a deterministic
 * heuristic; when the model fails the turn goes on without the oldest turns rather than failing.
 */
export class ContextWindow {
  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /** The newest summary whose last message is still in `messages`, and where the context starts after it. */
  latest(messages: readonly UIMessage[]): { summary: SummaryRecord; cut: number } | undefined {
    const at = new Map(messages.map((m, i) => [m.id, i]));
    for (const row of this.host.sql.exec<Row>("SELECT id, through_id, messages, text, model, tokens, created_at FROM tl_summaries ORDER BY created_at DESC, rowid DESC LIMIT 50")) {
      const i = at.get(row.through_id);
      if (i !== undefined) return { summary: record(row), cut: i + 1 };
    }
    return undefined;
  }

  /**
   * The turn's context. `force`: the provider refused the last one as too long: cut further.
   * Never throws for a summary that could not be written.
   */
  async prepare(t: { messages: UIMessage[]; flags: Flags; turnId: string; force?: boolean }): Promise<TurnWindow> {
    const config = getConfig(this.host.env);
    const budget = turnBudget(config, t.flags);
    const room = historyRoom(budget, FIXED_TOKENS + t.flags.turn_max_output_tokens);
    const stored = this.latest(t.messages);
    const cut = stored?.cut ?? 0;
    const plan = planCompaction({ messages: t.messages, tokens: tokensOf, room, cut, summaryTokens: stored?.summary.tokens ?? 0, force: t.force });
    const assemble = (summary: SummaryRecord | undefined, from: number) => ({ context: t.messages.slice(from), ...(summary && { summary: summaryText(summary.text) }) });
    if (!plan) return assemble(stored?.summary, cut);
    const through = t.messages[plan.to - 1]!;
    const compaction = { summarizedThrough: through.id, messages: plan.to };
    const fields = { threadId: this.host.threadId(), turnId: t.turnId, from: plan.from, to: plan.to, budget, force: Boolean(t.force) };
    try {
      const maxTokens = Math.max(64, Math.floor(room * SUMMARY_SHARE));
      const written = await this.#summarize(config, stored?.summary.text, t.messages.slice(plan.from, plan.to), { maxTokens, inputTokens: room, flags: t.flags, turnId: t.turnId });
      const summary: SummaryRecord = { id: crypto.randomUUID(), throughId: through.id, count: plan.to, ...written, tokens: textTokens(written.text), createdAt: Date.now() };
      this.host.sql.exec(
        "INSERT INTO tl_summaries (id, through_id, messages, text, model, tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        summary.id,
        summary.throughId,
        summary.count,
        summary.text,
        summary.model,
        summary.tokens,
        summary.createdAt,
      );
      log("info", "thread_compacted", { ...fields, model: summary.model, summaryTokens: summary.tokens });
      return { ...assemble(summary, plan.to), compaction };
    } catch (err) {
      // The turn still fits: without the oldest turns (the earlier summary, if any, still covers its own part).
      log("warn", "summary_failed", { ...fields, error: describeError(err) });
      return { ...assemble(stored?.summary, plan.to), compaction };
    }
  }

  async #summarize(config: Config, previous: string | undefined, messages: UIMessage[], o: { maxTokens: number; inputTokens: number; flags: Flags; turnId: string }) {
    if (config.offline) return { text: offlineSummary(previous, messages, o.maxTokens), model: OFFLINE_MODEL_ID };
    const { model, id } = chatModel(config, config.SUMMARY_MODEL ?? o.flags.chat_model);
    // The summary request must fit too: the summary model's budget when it has its own, else the turn's.
    const room = config.SUMMARY_MODEL ? contextBudget(config, config.SUMMARY_MODEL) - o.maxTokens - FIXED_TOKENS : o.inputTokens;
    let failure: unknown;
    const result = streamText({
      model,
      system: SUMMARY_PROMPT,
      // The instruction last, on its own: the transcript is material, not a request to answer.
      messages: [
        { role: "user", content: summaryInput(previous, messages, room) },
        { role: "user", content: "Summarize the conversation so far." },
      ],
      maxOutputTokens: o.maxTokens,
      maxRetries: 1,
      abortSignal: AbortSignal.timeout(SUMMARY_TIMEOUT_MS),
      onError: ({ error }) => void (failure = error),
    });
    const text = (await Promise.resolve(result.text).catch((err: unknown) => Promise.reject(failure ?? err))).trim();
    if (!text) throw new Error("the summary model answered with nothing");
    await recordCall(this.host, { turnId: o.turnId, kind: "summary", model: id, usage: await result.totalUsage });
    return { text, model: id };
  }

  /** Summaries not yet copied to Postgres (thread_summaries), oldest first. */
  unsynced(): SummaryRecord[] {
    return this.host.sql.exec<Row>("SELECT id, through_id, messages, text, model, tokens, created_at FROM tl_summaries WHERE synced = 0 ORDER BY created_at").toArray().map(record);
  }

  markSynced(ids: string[]): void {
    for (const id of ids) this.host.sql.exec("UPDATE tl_summaries SET synced = 1 WHERE id = ?", id);
  }

  /** The transcript was cleared: its summaries go with it (Postgres's go with the clear op). */
  clear(): void {
    this.host.sql.exec("DELETE FROM tl_summaries");
  }
}

/**
 * One model call made for a thread outside a turn's own steps (a summary, a title), charged to the
 * owner like any other (the spend ledger), under an entry id of its own. A failure only logs.
 */
export async function recordCall(
  host: { env: Env; threadId: () => string; ownerId: () => Promise<string> },
  c: { turnId: string; kind: string; model: string; usage: LanguageModelUsage },
) {
  try {
    const call = {
      entryId: `${c.turnId}:${c.kind}:${crypto.randomUUID()}`,
      kind: c.kind,
      model: c.model,
      inputTokens: c.usage.inputTokens ?? 0,
      outputTokens: c.usage.outputTokens ?? 0,
      at: Date.now(),
    };
    await userAuthority(host.env, await host.ownerId()).recordSpend({ turnId: c.turnId, threadId: host.threadId(), calls: [call], final: false });
  } catch (err) {
    log("error", "spend_record_failed", { threadId: host.threadId(), turnId: c.turnId, kind: c.kind, error: describeError(err) });
  }
}
