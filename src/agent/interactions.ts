import type { UIMessage } from "ai";
import { AppError } from "../errors";
import { findUnstorable } from "../validation/storable";
import type { Approvals } from "./approvals";
import type { ToolResultFrame } from "./frame-policy";
import { isServerTool } from "./tools";

type ToolPart = { type: string; toolCallId: string; state: string; input?: unknown; approval?: { id: string } };

/** A tool call of the transcript, by id: its part and tool name (parts are `tool-<name>`, or `dynamic-tool` with a toolName). */
export function toolCall(messages: readonly UIMessage[], toolCallId: string): { part: ToolPart; toolName: string } | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role !== "assistant") continue;
    for (const p of messages[i]!.parts as unknown as (ToolPart & { toolName?: string })[])
      if (p.toolCallId === toolCallId && (p.type.startsWith("tool-") || p.type === "dynamic-tool")) return { part: p, toolName: p.type === "dynamic-tool" ? (p.toolName ?? "") : p.type.slice(5) };
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
