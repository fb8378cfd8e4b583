import type { LanguageModelUsage } from "ai";
import { userAuthority } from "../authority/client.ts";
import type { CallSpend } from "../authority/spend-ledger.ts";
import { describeError, log } from "../observability/log.ts";

/** What the recorder knows of its turn (./turn.ts's TurnInput). */
export type SpendTurn = { env: Env; ownerId: string; threadId: string; turnId: string; kind: CallSpend["kind"]; reported?: Promise<unknown>; reserved?: number };

/**
 * Reports each finished step's tokens once (steps arrive again with every later callback), and ends
 * the reservation with the last. Between steps, a turn still within what its admission reserved
 * asks nothing: the authority already counts those tokens as the turn's, so no other turn can take
 * them, and the steps are recorded with the last (a call less between a tool's result and the next
 * step, 24 ms p50 at 20 threads). Past its reservation, each step asks the authority for room.
 */
export function spendRecorder(t: SpendTurn, model: string) {
  let recorded = 0;
  let settled = false;
  // When each step ended: a step recorded later keeps its own time in the ledger.
  const ended: number[] = [];
  return {
    async record(steps: readonly { usage: LanguageModelUsage }[], final: boolean): Promise<boolean> {
      if (settled) return false;
      while (ended.length < steps.length) ended.push(Date.now());
      const used = steps.reduce((n, s) => n + (s.usage.inputTokens ?? 0) + (s.usage.outputTokens ?? 0), 0);
      if (!final && t.reserved !== undefined && used <= t.reserved) return true;
      settled = final;
      const calls: CallSpend[] = steps.slice(recorded).map((s, i) => ({
        entryId: `${t.turnId}:${recorded + i}`,
        kind: t.kind,
        model,
        inputTokens: s.usage.inputTokens ?? 0,
        outputTokens: s.usage.outputTokens ?? 0,
        at: ended[recorded + i]!,
      }));
      recorded = steps.length;
      try {
        await t.reported;
        return (await userAuthority(t.env, t.ownerId).recordSpend({ turnId: t.turnId, threadId: t.threadId, calls, final })).room;
      } catch (err) {
        // The authority is a Durable Object beside this one; should it fail, the turn is not the one to pay.
        log("error", "spend_record_failed", { threadId: t.threadId, turnId: t.turnId, calls: calls.length, error: describeError(err) });
        return true;
      }
    },
  };
}
