import { CHAT_MESSAGE_TYPES } from "agents/chat";
import type { UIMessage } from "ai";
import { AppError } from "../errors.ts";
import { findUnstorable } from "../validation/storable.ts";
import type { Approvals } from "./approvals.ts";
import type { ToolResultFrame } from "./frame-policy.ts";
import type { Send } from "./http-stream.ts";
import { isServerTool } from "./tools/index.ts";

type ToolPart = { type: string; toolCallId: string; state: string; input?: unknown; approval?: { id: string } };

/** A tool call of the transcript, by id: its part and tool name (parts are `tool-<name>`, or `dynamic-tool` with a toolName). */
export function toolCall(messages: readonly UIMessage[], toolCallId: string): { part: ToolPart; toolName: string } | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role !== "assistant") continue;
    for (const p of messages[i]!.parts as unknown as (ToolPart & { toolName?: string })[])
      if (p.toolCallId === toolCallId && (p.type.startsWith("tool-") || p.type === "dynamic-tool"))
        return { part: p, toolName: p.type === "dynamic-tool" ? (p.toolName ?? "") : p.type.slice(5) };
  }
  return undefined;
}

/**
 * The owner's decision on a tool call the server held for approval, checked against what the
 * server issued (./approvals.ts) and the transcript: the call must still be waiting for it.
 */
export async function checkDecision(
  approvals: Approvals,
  messages: readonly UIMessage[],
  d: { toolCallId?: string; approvalId?: string; approved: boolean; by: string; reason?: string },
) {
  const issued = approvals.get(d.approvalId ? { approvalId: d.approvalId } : { toolCallId: d.toolCallId! });
  if (!issued) throw new AppError("not_found", "no approval of this thread's server waits on that tool call");
  const call = toolCall(messages, issued.toolCallId);
  if (!call) throw new AppError("not_found", "that tool call is not in this thread");
  if (call.part.approval?.id !== undefined && call.part.approval.id !== issued.approvalId) throw new AppError("conflict", "that approval is not the one this tool call waits for");
  if (call.part.state !== "approval-requested" && issued.status === "pending") throw new AppError("conflict", "that tool call is no longer waiting for a decision");
  return approvals.decide({ approvalId: issued.approvalId }, { approved: d.approved, by: d.by, reason: d.reason, currentInput: call.part.input });
}

/**
 * A client tool's result: only for a tool call this thread's server emitted, of a tool the client
 * declared (never one of the server's own), still waiting for its output; storable, and capped in
 * size by the frame policy.
 */
export function checkToolResult(messages: readonly UIMessage[], r: Pick<ToolResultFrame, "toolCallId" | "toolName" | "output">): void {
  const call = toolCall(messages, r.toolCallId);
  if (!call) throw new AppError("not_found", "no tool call of this thread has that id");
  if (isServerTool(call.toolName)) throw new AppError("forbidden", `${call.toolName} runs on the server; a client cannot answer it`);
  if (call.toolName !== r.toolName) throw new AppError("validation_failed", `that tool call is to ${call.toolName}, not ${r.toolName}`);
  if (call.part.state !== "input-available") throw new AppError("conflict", "that tool call already has its result");
  if (findUnstorable(r.output)) throw new AppError("validation_failed", "the tool result holds text that cannot be stored");
}

type Decision = { toolCallId?: string; approvalId?: string; approved: boolean; by?: string; reason?: string };
/** An HTTP caller's answers to the tool calls waiting: decisions on approvals, and client tools' results. */
export type Answers = { decisions?: { approvalId: string; approved: boolean; reason?: string }[]; results?: ToolResultFrame[] };

type Host = {
  approvals: Approvals;
  messages: () => readonly UIMessage[];
  ownerId: () => Promise<string>;
  send: Send;
  /** Schedules `expireApproval` on the agent (the name the scheduler stores: it must keep it). */
  schedule: (seconds: number, payload: { approvalId: string }) => Promise<unknown>;
};

/**
 * A thread's tool calls held for a decision, in its agent: approvals issued with their expiry
 * scheduled, decisions and client tools' results checked before the protocol applies them, and a
 * call denied through the protocol when its time is up.
 */
export class Decisions {
  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /** A decision or a client tool's result, checked against what this thread's server issued; throws the refusal. */
  async check(i: { decision: Decision } | { result: ToolResultFrame }) {
    const { approvals, messages } = this.host;
    if ("result" in i) return checkToolResult(messages(), i.result);
    // Only the thread's owner decides (not the admin, nor anyone the Worker did not name).
    if (!i.decision.by || i.decision.by !== (await this.host.ownerId())) throw new AppError("forbidden", "only the thread's owner decides on its tool calls");
    try {
      await checkDecision(approvals, messages(), { ...i.decision, by: i.decision.by });
    } catch (err) {
      // Too late: the call is denied now, as its expiry would have.
      if (err instanceof AppError && err.code === "approval_expired") await this.#deny(i.decision);
      throw err;
    }
    return undefined;
  }

  /** Of answers sent with a whole transcript (useChat), those to calls still waiting: what is settled on the server is history, not a new answer. */
  waiting(a: Answers): Answers {
    return {
      decisions: a.decisions?.filter((d) => this.host.approvals.get({ approvalId: d.approvalId })?.status === "pending"),
      results: a.results?.filter((r) => toolCall(this.host.messages(), r.toolCallId)?.part.state === "input-available"),
    };
  }

  /** The protocol frames that apply checked answers; each continues the turn once its step has all of them. */
  frames(a: Answers): object[] {
    return [
      ...(a.decisions ?? []).map((d) => ({
        type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL,
        toolCallId: this.host.approvals.get({ approvalId: d.approvalId })!.toolCallId,
        approved: d.approved,
        autoContinue: true,
      })),
      ...(a.results ?? []).map((r) => ({ ...r, type: CHAT_MESSAGE_TYPES.TOOL_RESULT, autoContinue: true })),
    ];
  }

  async issue(a: { approvalId: string; toolCallId: string; toolName: string; input: unknown }, turnId: string, ttlSeconds: number) {
    await this.host.approvals.issue({ ...a, turnId, ttlSeconds });
    await this.host.schedule(ttlSeconds, { approvalId: a.approvalId });
  }

  /** An approval's time is up: still undecided, the tool call is denied (the model is not run for it). */
  async expire(approvalId: string) {
    if (this.host.approvals.expire(approvalId)) await this.#deny({ approvalId });
  }

  async #deny(by: { approvalId?: string; toolCallId?: string }) {
    const a = this.host.approvals.get(by.approvalId ? { approvalId: by.approvalId } : { toolCallId: by.toolCallId! });
    if (a) await this.host.send("expire", { type: CHAT_MESSAGE_TYPES.TOOL_APPROVAL, toolCallId: a.toolCallId, approved: false, autoContinue: false });
  }
}
