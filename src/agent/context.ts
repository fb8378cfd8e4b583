import type { UIMessage } from "ai";

/**
 * What the model sees for a turn. Overlapping submits are queued: every user message is stored
 * (and shown) when it arrives, but each turn answers its own message, in arrival order. So a
 * turn's context stops at its user message, with the replies to earlier turns moved before it.
 */
export function contextFor(messages: readonly UIMessage[], userMessageId: string | undefined): UIMessage[] {
  const i = userMessageId ? messages.findIndex((m) => m.id === userMessageId) : -1;
  if (i < 0) return [...messages];
  const earlierReplies = messages.slice(i + 1).filter((m) => m.role === "assistant");
  return [...messages.slice(0, i), ...earlierReplies, messages[i]!];
}

/** The user message of a turn and the assistant reply that followed it (the last reply, for a regenerate). Pure. */
export function turnMessages(messages: readonly UIMessage[], userMessageId: string | undefined): UIMessage[] {
  const i = userMessageId ? messages.findIndex((m) => m.id === userMessageId) : messages.findLastIndex((m) => m.role === "user");
  if (i < 0) return [];
  const reply = messages[i + 1];
  return reply?.role === "assistant" ? [messages[i]!, reply] : [messages[i]!];
}
