import { z } from "zod";
import { databaseError, isTransient } from "./resilience.ts";

const statuses = {
  bad_request: 400,
  invalid_json: 400,
  invalid_frame: 400,
  unknown_frame: 400,
  unauthorized: 401,
  token_budget_exhausted: 402,
  forbidden: 403,
  admin_disabled: 403,
  not_found: 404,
  user_not_found: 404,
  thread_not_found: 404,
  flag_not_found: 404,
  mcp_server_not_found: 404,
  conflict: 409,
  approval_expired: 410,
  payload_too_large: 413,
  frame_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  quota_exceeded: 422,
  rate_limited: 429,
  too_many_connections: 429,
  database_unavailable: 503,
  search_unavailable: 503,
  model_unavailable: 503,
  mcp_secret_missing: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof statuses;
/** Fields a refusal may carry beside its code and message (which budget is spent and when it resets, say). */
export type ErrorDetails = Record<string, string | number | boolean | null>;
export type ErrorBody = { error: { code: ErrorCode; message: string; retryAfter?: number } & ErrorDetails };

export const isErrorCode = (code: unknown): code is ErrorCode => typeof code === "string" && Object.hasOwn(statuses, code);

/**
 * The one error type: every failure a client may see is an AppError with a code that fixes its
 * HTTP status, and the same error is the WebSocket's error frame.
 */
export class AppError extends Error {
  /** Seconds until a refused request may be retried (429), sent as Retry-After. */
  readonly retryAfter?: number;
  readonly details?: ErrorDetails;
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfter?: number; details?: ErrorDetails }) {
    super(message, options);
    this.code = code;
    this.name = "AppError";
    this.retryAfter = options?.retryAfter;
    this.details = options?.details;
  }
  get status() {
    return statuses[this.code];
  }
  toJSON(): ErrorBody {
    return { error: { ...this.details, code: this.code, message: this.message, ...(this.retryAfter !== undefined && { retryAfter: this.retryAfter }) } };
  }
  /** As a plain value, to cross a Durable Object RPC boundary (which keeps no error classes). */
  toRefusal(): Refusal {
    return {
      ok: false,
      code: this.code,
      message: this.message,
      ...(this.retryAfter !== undefined && { retryAfter: this.retryAfter }),
      ...(this.details && { details: this.details }),
    };
  }
  static fromRefusal(r: Refusal): AppError {
    return new AppError(r.code, r.message, { retryAfter: r.retryAfter, details: r.details });
  }
  toResponse(): Response {
    const headers: Record<string, string> = this.retryAfter !== undefined ? { "retry-after": String(this.retryAfter) } : {};
    return Response.json(this.toJSON(), { status: this.status, headers });
  }
}

/** A refusal as a value: what Durable Objects answer over RPC. */
export type Refusal = { ok: false; code: ErrorCode; message: string; retryAfter?: number; details?: ErrorDetails };

export const validationError = (error: z.ZodError, where = "body") => new AppError("validation_failed", `invalid ${where}: ${z.prettifyError(error).replaceAll("\n", "; ")}`);

/** Maps anything thrown to an AppError: known database errors get their code, everything else is internal. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const db = databaseError(err);
  if (db?.code === "23503") {
    if (db.constraint?.includes("user_id")) return new AppError("user_not_found", "user not found", { cause: err });
    if (db.constraint?.includes("thread_id")) return new AppError("thread_not_found", "thread not found", { cause: err });
    return new AppError("not_found", "referenced row not found", { cause: err });
  }
  if (db?.code === "23505") return new AppError("conflict", db.constraint?.includes("email") ? "a user with this email already exists" : "already exists", { cause: err });
  if (isTransient(err)) return new AppError("database_unavailable", "database unavailable", { cause: err });
  return new AppError("internal_error", "internal error", { cause: err });
}
