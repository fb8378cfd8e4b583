import { z } from "zod";

const statuses = {
  bad_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  token_budget_exhausted: 402,
  forbidden: 403,
  admin_disabled: 403,
  not_found: 404,
  user_not_found: 404,
  thread_not_found: 404,
  flag_not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  rate_limited: 429,
  too_many_connections: 429,
  database_unavailable: 503,
  search_unavailable: 503,
  model_unavailable: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof statuses;
export type ErrorBody = { error: { code: ErrorCode; message: string; retryAfter?: number } };

/** The one error type: every failure a client may see is an AppError with a code that fixes its HTTP status. */
export class AppError extends Error {
  /** Seconds until a refused request may be retried (429), sent as Retry-After. */
  readonly retryAfter?: number;
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(message, options);
    this.name = "AppError";
    this.retryAfter = options?.retryAfter;
  }
  get status() {
    return statuses[this.code];
  }
  toJSON(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.retryAfter !== undefined && { retryAfter: this.retryAfter }) } };
  }
  toResponse(): Response {
    const headers: Record<string, string> = this.retryAfter !== undefined ? { "retry-after": String(this.retryAfter) } : {};
    return Response.json(this.toJSON(), { status: this.status, headers });
  }
}

export const validationError = (error: z.ZodError, where = "body") =>
  new AppError("validation_failed", `invalid ${where}: ${z.prettifyError(error).replaceAll("\n", "; ")}`);

const transientCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "57P01", "57P03", "08000", "08001", "08003", "08006"]);

/** Maps anything thrown to an AppError: known database errors get their code, everything else is internal. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const db = findDatabaseError(err);
  if (db) {
    if (db.code === "23503") {
      if (db.constraint?.includes("user_id")) return new AppError("user_not_found", "user not found", { cause: err });
      if (db.constraint?.includes("thread_id")) return new AppError("thread_not_found", "thread not found", { cause: err });
      return new AppError("not_found", "referenced row not found", { cause: err });
    }
    if (db.code === "23505") {
      const what = db.constraint?.includes("email") ? "a user with this email already exists" : "already exists";
      return new AppError("conflict", what, { cause: err });
    }
    if (db.code && transientCodes.has(db.code)) return new AppError("database_unavailable", "database unavailable", { cause: err });
  }
  if (isConnectionFailure(err)) return new AppError("database_unavailable", "database unavailable", { cause: err });
  return new AppError("internal_error", "internal error", { cause: err });
}

type DbErrorLike = { code?: string; constraint?: string };

function findDatabaseError(err: unknown): DbErrorLike | undefined {
  // drizzle wraps driver errors in DrizzleQueryError; the pg error is its cause.
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as DbErrorLike).code;
    if (typeof code === "string") return e as DbErrorLike;
  }
  return undefined;
}

function isConnectionFailure(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const msg = String((e as Error).message ?? "");
    if (/connect|connection|socket|terminated|network/i.test(msg)) return true;
  }
  return false;
}
