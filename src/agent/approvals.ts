import { AppError } from "../errors.ts";
import { log } from "../observability/log.ts";

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired";
export type Approval = {
  approvalId: string;
  toolCallId: string;
  toolName: string;
  input: unknown;
  createdAt: number;
  expiresAt: number;
  status: ApprovalStatus;
  decidedAt: number | null;
  decidedBy: string | null;
  reason: string | null;
};
type Row = {
  approval_id: string;
  tool_call_id: string;
  tool_name: string;
  input: string;
  input_hash: string;
  created_at: number;
  expires_at: number;
  status: ApprovalStatus;
  decided_at: number | null;
  decided_by: string | null;
  reason: string | null;
};

/** A stable hash of a tool call's input (keys sorted), binding a decision to exactly what was asked. */
export async function inputHash(input: unknown): Promise<string> {
  const canonical = JSON.stringify(input, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical ?? "null"));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const fromRow = (r: Row): Approval => ({
  approvalId: r.approval_id,
  toolCallId: r.tool_call_id,
  toolName: r.tool_name,
  input: JSON.parse(r.input),
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  status: r.status,
  decidedAt: r.decided_at,
  decidedBy: r.decided_by,
  reason: r.reason,
});

/**
 * The approvals a thread's server issued, in the agent's SQLite (they survive eviction). A decision
 * is accepted only for an approval issued here, still pending and unexpired, whose tool call's input
 * still hashes to what was asked, and only once; anything else is refused and changes nothing.
 */
export class Approvals {
  private readonly sql: SqlStorage;
  private readonly threadId: () => string;
  constructor(sql: SqlStorage, threadId: () => string) {
    this.sql = sql;
    this.threadId = threadId;
  }

  async issue(a: { approvalId: string; toolCallId: string; toolName: string; input: unknown; turnId: string; ttlSeconds: number }): Promise<void> {
    const now = Date.now();
    this.sql.exec(
      "INSERT OR IGNORE INTO tl_approvals (approval_id, tool_call_id, tool_name, input_hash, input, turn_id, created_at, expires_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
      a.approvalId,
      a.toolCallId,
      a.toolName,
      await inputHash(a.input),
      JSON.stringify(a.input ?? null),
      a.turnId,
      now,
      now + a.ttlSeconds * 1000,
    );
    log("info", "approval_requested", { threadId: this.threadId(), approvalId: a.approvalId, tool: a.toolName, turnId: a.turnId });
  }

  get(by: { approvalId: string } | { toolCallId: string }): Approval | undefined {
    const [col, v] = "approvalId" in by ? ["approval_id", by.approvalId] : ["tool_call_id", by.toolCallId];
    const row = this.sql.exec<Row>(`SELECT * FROM tl_approvals WHERE ${col} = ? ORDER BY created_at DESC LIMIT 1`, v).toArray()[0];
    return row && fromRow(row);
  }

  list(status?: ApprovalStatus): Approval[] {
    const rows = status
      ? this.sql.exec<Row>("SELECT * FROM tl_approvals WHERE status = ? ORDER BY created_at", status)
      : this.sql.exec<Row>("SELECT * FROM tl_approvals ORDER BY created_at");
    return rows.toArray().map(fromRow);
  }

  /**
   * Records a decision, once. `currentInput` is the input the transcript's tool call has now: a
   * decision on an approval whose call no longer asks for what was approved is refused.
   */
  async decide(
    by: { approvalId: string } | { toolCallId: string },
    d: { approved: boolean; by: string; reason?: string; currentInput: unknown },
    now = Date.now(),
  ): Promise<Approval> {
    const a = this.get(by);
    if (!a) throw new AppError("not_found", "no such approval on this thread");
    if (a.status === "pending" && a.expiresAt <= now) this.#settle(a.approvalId, "expired", now, "server", "expired before a decision");
    const current = this.get({ approvalId: a.approvalId })!;
    if (current.status === "expired") throw new AppError("approval_expired", "this approval expired; the tool call was denied");
    if (current.status !== "pending") throw new AppError("conflict", `this approval was already ${current.status}`);
    const row = this.sql.exec<{ input_hash: string }>("SELECT input_hash FROM tl_approvals WHERE approval_id = ?", a.approvalId).one();
    if ((await inputHash(d.currentInput)) !== row.input_hash) throw new AppError("conflict", "the tool call's input is not what was asked for approval");
    this.#settle(a.approvalId, d.approved ? "approved" : "denied", now, d.by, d.reason ?? null);
    log("info", "approval_decided", { threadId: this.threadId(), approvalId: a.approvalId, tool: a.toolName, approved: d.approved, by: d.by });
    return this.get({ approvalId: a.approvalId })!;
  }

  /** Marks a pending approval expired (its time came); true when it was still pending. */
  expire(approvalId: string, now = Date.now()): boolean {
    const a = this.get({ approvalId });
    if (a?.status !== "pending") return false;
    this.#settle(approvalId, "expired", now, "server", "expired before a decision");
    log("info", "approval_expired", { threadId: this.threadId(), approvalId, tool: a.toolName });
    return true;
  }

  #settle(approvalId: string, status: ApprovalStatus, at: number, by: string, reason: string | null) {
    this.sql.exec(
      "UPDATE tl_approvals SET status = ?, decided_at = ?, decided_by = ?, reason = ? WHERE approval_id = ? AND status = 'pending'",
      status,
      at,
      by,
      reason,
      approvalId,
    );
  }
}
