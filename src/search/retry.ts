import { AppError } from "../errors";

// Connection refused/reset, serialization failure, deadlock: worth another try. Anything else is not.
const TRANSIENT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "40001", "40P01", "57P01", "08000", "08001", "08003", "08006"]);
const TRANSIENT_MESSAGE = /ECONNREFUSED|ECONNRESET|connection (refused|reset|terminated)|Connection terminated|socket hang up|network connection lost/i;

export function isTransient(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
    // withDb reports a failed connect as database_unavailable: the server was not reached, so retrying is safe.
    if (e instanceof AppError && e.code === "database_unavailable") return true;
    if (TRANSIENT_MESSAGE.test(String((e as { message?: unknown }).message ?? ""))) return true;
  }
  return false;
}

export type RetryPolicy = { retries: number; baseDelayMs: number; maxDelayMs: number };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn`, retrying transient faults with full-jitter exponential backoff; the last error is rethrown. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.retries || !isTransient(err)) throw err;
      await sleep(Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt));
    }
  }
}

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
