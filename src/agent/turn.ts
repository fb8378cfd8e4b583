import { convertToModelMessages, isStepCount, streamText, type LanguageModelUsage, type ToolSet, type UIMessage } from "ai";
import { userAuthority } from "../authority/client";
import type { CallSpend } from "../authority/user-authority";
import { getConfig } from "../config";
import { toAppError } from "../errors";
import type { Flags } from "../flags";
import type { AssistantMetadata } from "../messages";
import { describeError, log } from "../observability/log";
import type { TurnTrace } from "../observability/turn-trace";
import { chatModel } from "./model";
import { agentTools } from "./tools";

export const SYSTEM_PROMPT =
  "You are Threadline, a helpful assistant in a chat thread. Answer concisely. Use the tools you are given when they help, and say so when a tool fails.";

const MAX_STEPS = 5;

export type TurnInput = {
  env: Env;
  threadId: string;
  ownerId: string;
  turnId: string;
  kind: string;
  context: UIMessage[];
  flags: Flags;
  trace: TurnTrace;
  storage: DurableObjectStorage;
  abortSignal?: AbortSignal;
  /** Tools the client declared and runs (no execute here): the AI SDK stops for their results. */
  clientTools?: ToolSet;
  /** A tool call the AI SDK holds for the owner's decision, as it is issued. */
  onApprovalRequest?: (a: { approvalId: string; toolCallId: string; toolName: string; input: unknown }) => void | Promise<void>;
};

/**
 * One turn's model call: the system prompt, the model and tools the flags allow, the steps of a
 * tool loop, and the metadata stamped on the reply. Every model call's tokens go to the owner's
 * authority as its step ends (the spend ledger); a multi-step turn stops when the budget has no
 * room for another call. Returns the AI SDK UI message stream the chat protocol sends on.
 */
export async function runTurn(t: TurnInput): Promise<Response> {
  const { model, id, offline } = chatModel(getConfig(t.env), t.flags.chat_model);
  Object.assign(t.trace, { model: id, offline });
  const { tools: own, approval } = agentTools({ env: t.env, threadId: t.threadId, storage: t.storage, ownerId: async () => t.ownerId, flags: t.flags });
  const tools: ToolSet = { ...t.clientTools, ...own };
  const spend = spendRecorder(t, id);
  const result = streamText({
    model,
    system: SYSTEM_PROMPT,
    messages: await convertToModelMessages(t.context, { tools, ignoreIncompleteToolCalls: true }),
    tools,
    toolApproval: approval,
    maxOutputTokens: t.flags.turn_max_output_tokens,
    stopWhen: [isStepCount(MAX_STEPS), async ({ steps }) => !(await spend.record(steps, false))],
    abortSignal: t.abortSignal,
    onChunk: async ({ chunk }) => {
      t.trace.chunk();
      if (chunk.type === "tool-approval-request" && !chunk.isAutomatic) {
        t.trace.approval(chunk.toolCall.toolName, "requested");
        await t.onApprovalRequest?.({ approvalId: chunk.approvalId, toolCallId: chunk.toolCall.toolCallId, toolName: chunk.toolCall.toolName, input: chunk.toolCall.input });
      }
    },
    onToolExecutionEnd: (e) => t.trace.tool(e.toolCall.toolName, e.toolOutput, e.toolExecutionMs),
    onEnd: async ({ steps, totalUsage }) => {
      await spend.record(steps, true);
      t.trace.end("ok", { inputTokens: totalUsage.inputTokens, outputTokens: totalUsage.outputTokens });
    },
    onAbort: async ({ steps }) => {
      await spend.record(steps, true);
      t.trace.end("aborted");
    },
    onError: async ({ error }) => {
      await spend.record([], true);
      t.trace.end("error", { code: toAppError(error).code });
    },
  });
  return result.toUIMessageStreamResponse({
    messageMetadata: ({ part }): AssistantMetadata | undefined => {
      if (part.type === "start") return { model: id, offline };
      if (part.type === "finish") return { model: id, offline, usage: usageOf(part.totalUsage) };
      return undefined;
    },
    onError: (error) => {
      log("error", "model_error", { threadId: t.threadId, requestId: t.turnId, error: describeError(error) });
      return `The model request failed: ${error instanceof Error ? error.message : String(error)}`;
    },
  });
}

const usageOf = (u: LanguageModelUsage) => ({ inputTokens: u.inputTokens, outputTokens: u.outputTokens, totalTokens: u.totalTokens });

/** Reports each finished step's tokens once (steps arrive again with every later callback), and ends the reservation with the last. */
function spendRecorder(t: TurnInput, model: string) {
  let recorded = 0;
  let settled = false;
  return {
    async record(steps: readonly { usage: LanguageModelUsage }[], final: boolean): Promise<boolean> {
      if (settled) return false;
      settled = final;
      const calls: CallSpend[] = steps.slice(recorded).map((s, i) => ({
        entryId: `${t.turnId}:${recorded + i}`,
        kind: t.kind,
        model,
        inputTokens: s.usage.inputTokens ?? 0,
        outputTokens: s.usage.outputTokens ?? 0,
        at: Date.now(),
      }));
      recorded = steps.length;
      try {
        return (await userAuthority(t.env, t.ownerId).recordSpend({ turnId: t.turnId, threadId: t.threadId, calls, final })).room;
      } catch (err) {
        // The authority is a Durable Object beside this one; should it fail, the turn is not the one to pay.
        log("error", "spend_record_failed", { threadId: t.threadId, turnId: t.turnId, calls: calls.length, error: describeError(err) });
        return true;
      }
    },
  };
}
