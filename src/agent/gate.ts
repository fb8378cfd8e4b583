import type { UIMessage } from "ai";
import { estimateTokens } from "../authority/budget";
import { userAuthority } from "../authority/client";
import { getConfig } from "../config";
import { AppError } from "../errors";
import type { Flags } from "../flags";
import type { ChatRequestBody } from "./frame-policy";

/**
 * The server owns history: of what a client sends it keeps only the new user message's text
 * parts, appended to the transcript it already has; a regenerate drops the trailing assistant
 * reply. Forged or stale history in the request is never persisted. Pure.
 */
export function serverTranscript(stored: readonly UIMessage[], body: ChatRequestBody): { messages: UIMessage[]; userMessageId?: string } | AppError {
  if (body.trigger === "regenerate-message") {
    const messages = [...stored];
    while (messages.at(-1)?.role === "assistant") messages.pop();
    if (!messages.length) return new AppError("validation_failed", "there is nothing to regenerate");
    return { messages };
  }
  const sent = body.messages.at(-1)!;
  if (stored.some((m) => m.id === sent.id)) return new AppError("validation_failed", `message id ${sent.id} is already in this thread`);
  const parts = sent.parts.filter((p) => p.type === "text" && typeof p.text === "string").map((p) => ({ type: "text" as const, text: p.text as string }));
  return { messages: [...stored, { id: sent.id, role: "user", parts }], userMessageId: sent.id };
}

/** The tokens a turn reserves at admission: its context, estimated, and the longest reply it may write. */
export function reservationFor(messages: readonly UIMessage[], maxOutputTokens: number, systemChars: number): number {
  const chars = messages.reduce((n, m) => n + JSON.stringify(m.parts).length, systemChars);
  return estimateTokens(chars) + maxOutputTokens;
}

/**
 * Admission: the turn's flags allow a model, then one call to the owner's authority, which checks
 * the caller's key, the budgets (with the turns in flight) and the rate window, and reserves the
 * turn's estimate. No Postgres on this path. Returns the refusal, if any.
 */
export async function admitTurn(
  env: Env,
  turn: { ownerId: string; threadId: string; turnId: string; keyHash?: string; flags: Flags; reserve: number },
): Promise<AppError | undefined> {
  if (getConfig(env).offline && !turn.flags.offline_model_allowed)
    return new AppError("model_unavailable", "no model is configured and the offline model is turned off (flag offline_model_allowed)");
  const r = await userAuthority(env, turn.ownerId).admitTurn({
    turnId: turn.turnId,
    threadId: turn.threadId,
    keyHash: turn.keyHash,
    rate: { limit: turn.flags.turn_rate_limit, windowSeconds: turn.flags.turn_rate_window_seconds },
    reserve: turn.reserve,
  });
  return r.ok ? undefined : AppError.fromRefusal(r);
}
