import type { Config } from "../config.ts";
import type { Flags } from "../flags/index.ts";
import { OFFLINE_MODEL_ID } from "./offline-model.ts";

/**
 * Context windows (tokens: prompt and reply together) of common models, matched by the longest
 * prefix of the model id ("gpt-4o-mini-2024-07-18" is a "gpt-4o"). CONTEXT_BUDGETS adds to and
 * overrides these; a model named nowhere gets CONTEXT_BUDGET_TOKENS. The offline model has no real
 * window: its budget is small so a long offline thread shows compaction working.
 */
export const DEFAULT_CONTEXT_BUDGETS: Readonly<Record<string, number>> = {
  "gpt-5": 400_000,
  "gpt-4.1": 1_047_576,
  "gpt-4o": 128_000,
  "gpt-4-turbo": 128_000,
  "gpt-4-32k": 32_768,
  "gpt-4": 8_192,
  "gpt-3.5-turbo": 16_385,
  o1: 200_000,
  "o1-mini": 128_000,
  o3: 200_000,
  "o4-mini": 200_000,
  [OFFLINE_MODEL_ID]: 8_192,
};

/** A model's budget: the flag's (context_budget_tokens, when not 0), else the configured or default one by longest prefix, else CONTEXT_BUDGET_TOKENS. */
export function contextBudget(config: Pick<Config, "CONTEXT_BUDGETS" | "CONTEXT_BUDGET_TOKENS">, modelId: string, flag = 0): number {
  if (flag > 0) return flag;
  const table = { ...DEFAULT_CONTEXT_BUDGETS, ...config.CONTEXT_BUDGETS };
  const match = Object.keys(table)
    .filter((prefix) => modelId === prefix || modelId.startsWith(`${prefix}-`) || modelId.startsWith(`${prefix}:`) || modelId.startsWith(`${prefix}.`))
    .sort((a, b) => b.length - a.length)[0];
  return match ? table[match]! : config.CONTEXT_BUDGET_TOKENS;
}

/** The budget of a turn's model under its flags: the offline model's without configuration, else the chat_model flag's. */
export const turnBudget = (config: Config, flags: Pick<Flags, "chat_model" | "context_budget_tokens">) =>
  contextBudget(config, config.offline ? OFFLINE_MODEL_ID : flags.chat_model, flags.context_budget_tokens);
