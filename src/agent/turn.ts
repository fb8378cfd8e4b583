import {
  APICallError,
  convertToModelMessages,
  createUIMessageStreamResponse,
  isStepCount,
  RetryError,
  streamText,
  type LanguageModelUsage,
  type ToolSet,
  type UIMessage,
  type UIMessageChunk,
} from "ai";
import { getConfig } from "../config.ts";
import { toAppError } from "../errors.ts";
import type { Flags } from "../flags/index.ts";
import type { AssistantMetadata } from "../messages.ts";
import { describeError, log } from "../observability/log.ts";
import type { TurnTrace } from "../observability/turn-trace.ts";
import type { Compaction, TurnWindow } from "./compaction.ts";
import { chatModel } from "./model.ts";
import { isContextOverflow, retryOnOverflow, watchFirstCall } from "./overflow.ts";
import { spendRecorder } from "./spend-recorder.ts";
import { turnVersions, userScope } from "../search/cache.ts";
import { workerCacheVersions } from "../search/deps.ts";
import { agentTools } from "./tools/index.ts";

export const SYSTEM_PROMPT =
  "You are Threadline, a helpful assistant in a chat thread. Answer concisely. Use the tools you are given when they help, and say so when a tool fails. " +
  "When you use passages hybrid_search found, cite each as [n], n being its place in the results (the first search's are 1, 2, …; a later search's continue the count).";

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
  /** Signs each approval request; the AI SDK verifies it when the decision comes back (a forged approval fails there too). */
  approvalSecret?: Uint8Array;
  /** A tool call the AI SDK holds for the owner's decision, as it is issued. */
  onApprovalRequest?: (a: { approvalId: string; toolCallId: string; toolName: string; input: unknown }) => void | Promise<void>;
  /** The tools of the owner's MCP servers (src/mcp/client.ts). */
  mcp?: ToolSet;
  /** The summary of the messages before `context`, and the compaction made for this turn (./context-window.ts): the client gets it as a `data-compaction` part. */
  summary?: string;
  compaction?: Compaction;
  /** A smaller context, for one retry when the provider refuses this one as too long. */
  compact?: () => Promise<TurnWindow>;
  /** Settles once the owner's authority holds the turn's reservation (a turn started on its thread's lease reports it after starting). */
  reported?: Promise<unknown>;
  /** The version of the owner's documents as of the turn's admission (none: the searches ask the authority). */
  searchVersion?: Promise<number | undefined>;
  /** The tokens the turn's admission reserved at the authority (none: a continuation the gate did not see). */
  reserved?: number;
};

/**
 * One turn's model call: the system prompt, the model and tools the flags allow, the steps of a
 * tool loop, and the metadata stamped on the reply. Every model call's tokens go to the owner's
 * authority (the spend ledger: ./spend-recorder.ts); a multi-step turn past its reservation stops
 * when the budget has no room for another call. Returns the AI SDK UI message stream the chat protocol sends on.
 */
export async function runTurn(t: TurnInput): Promise<Response> {
  const { model, id, offline } = chatModel(getConfig(t.env), t.flags.chat_model);
  Object.assign(t.trace, { model: id, offline });
  const { tools: own, approval } = agentTools(
    {
      env: t.env,
      threadId: t.threadId,
      storage: t.storage,
      ownerId: async () => t.ownerId,
      flags: t.flags,
      versions: t.searchVersion && turnVersions(userScope(t.ownerId), t.searchVersion, workerCacheVersions(t.env)),
    },
    t.mcp,
  );
  const tools: ToolSet = { ...t.clientTools, ...own };
  const spend = spendRecorder(t, id);
  // A first call the provider refuses as too long is retried once, compacted further (retryOnOverflow: in the stream, so nothing waits for the model).
  const start = async ({ context, summary }: TurnWindow, retryable: boolean) => {
    const watched = watchFirstCall(model);
    const result = streamText({
      model: watched.model,
      system: summary
        ? [
            { role: "system", content: SYSTEM_PROMPT },
            { role: "system", content: summary },
          ]
        : SYSTEM_PROMPT,
      messages: await convertToModelMessages(context, { tools, ignoreIncompleteToolCalls: true }),
      tools,
      toolApproval: approval,
      experimental_toolApprovalSecret: t.approvalSecret,
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
        if (retryable && isContextOverflow(error)) return;
        await spend.record([], true);
        t.trace.end("error", { code: isContextOverflow(error) ? "context_length_exceeded" : toAppError(error).code });
      },
    });
    return { result, first: watched.first };
  };
  const ui = (result: ReturnType<typeof streamText>, retryable: boolean) =>
    result.toUIMessageStream({
      messageMetadata: ({ part }): AssistantMetadata | undefined => {
        if (part.type === "start") return { model: id, offline };
        if (part.type === "finish") return { model: id, offline, usage: usageOf(part.totalUsage) };
        return undefined;
      },
      onError: (error) => {
        // A refusal the turn retries compacted is not the turn's error.
        if (!(retryable && isContextOverflow(error))) log("error", "model_error", { threadId: t.threadId, requestId: t.turnId, error: describeError(error) });
        return modelErrorText(error);
      },
    });
  const window: TurnWindow = { context: t.context, summary: t.summary, compaction: t.compaction };
  const first = await start(window, Boolean(t.compact));
  const stream = withCompaction(ui(first.result, Boolean(t.compact)), window.compaction);
  const compact = t.compact;
  if (!compact) return createUIMessageStreamResponse({ stream });
  const retried = async () => {
    const smaller = await compact();
    return withCompaction(ui((await start(smaller, false)).result, false), smaller.compaction);
  };
  return createUIMessageStreamResponse({ stream: retryOnOverflow(stream, first.first, retried) });
}

/** The turn's stream with its compaction, if any, as a data part right after the reply starts (kept in the reply's parts, so a reload shows it too). */
function withCompaction(stream: ReadableStream<UIMessageChunk>, compaction: Compaction | undefined): ReadableStream<UIMessageChunk> {
  if (!compaction) return stream;
  let sent = false;
  return stream.pipeThrough(
    new TransformStream<UIMessageChunk, UIMessageChunk>({
      transform(chunk, out) {
        out.enqueue(chunk);
        if (!sent && chunk.type === "start") {
          sent = true;
          out.enqueue({ type: "data-compaction", data: compaction });
        }
      },
    }),
  );
}

const usageOf = (u: LanguageModelUsage) => ({ inputTokens: u.inputTokens, outputTokens: u.outputTokens, totalTokens: u.totalTokens });

/** What a person reads when the model fails, on the failed reply (the details are in the log): the model server's status, never its raw error. */
export function modelErrorText(error: unknown): string {
  const last = RetryError.isInstance(error) ? error.lastError : error;
  const status = APICallError.isInstance(last) ? last.statusCode : undefined;
  if (isContextOverflow(last))
    return "This conversation no longer fits the model's context window, even with its oldest part summarized, so no reply was written. Start a new thread, or ask the administrator for a larger context budget.";
  if (!APICallError.isInstance(last)) return "The model failed while writing this reply. Try again in a moment.";
  if (status === 401 || status === 403) return `The model server refused this service's credentials (${status}). Tell the administrator.`;
  if (status === 429) return "The model server is busy (429). Try again in a moment.";
  if (status && status >= 500) return `The model server had a problem (${status}). Try again in a moment.`;
  if (status) return `The model server refused the request (${status}).`;
  return "The model could not be reached. Try again in a moment.";
}
