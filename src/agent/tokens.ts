/**
 * Token estimates without a tokenizer: the heuristic agents/sessions stamps on every row it writes
 * (the larger of characters / 4 and words x 1.3, over what a model reads of a message: text,
 * reasoning, tool input and output; data parts are never sent to a model and count nothing). One
 * copy here so Postgres (messages.token_estimate), the context window and the SDK's rows agree.
 */
export const textTokens = (text: string | undefined): number => {
  if (!text) return 0;
  return Math.ceil(Math.max(text.length / 4, text.split(/\s+/).filter(Boolean).length * 1.3));
};

const valueTokens = (v: unknown): number => (v === null || v === undefined ? 0 : textTokens(typeof v === "string" ? v : JSON.stringify(v)));

type Part = { type: string; text?: unknown; reasoning?: unknown; input?: unknown; output?: unknown; result?: unknown };

/** A message's estimate: 4 for its framing, plus its parts. */
export function messageTokens(m: { parts: readonly unknown[] }): number {
  let tokens = 4;
  for (const part of m.parts as readonly Part[]) {
    if (part.type === "text" || part.type === "reasoning") tokens += valueTokens(part.text ?? part.reasoning);
    else if (part.type.startsWith("tool-") || part.type === "dynamic-tool") tokens += valueTokens(part.input) + valueTokens(part.output ?? part.result);
    else if (!part.type.startsWith("data-") && part.text !== undefined) tokens += valueTokens(part.text);
  }
  return tokens;
}

const memo = new WeakMap<object, number>();

/** The estimate of a message object, computed once (the agent's messages are replaced, never mutated, when they change). */
export const tokensOf = (m: { parts: readonly unknown[] }): number => {
  let n = memo.get(m);
  if (n === undefined) memo.set(m, (n = messageTokens(m)));
  return n;
};
