/**
 * Which failures are worth another try, and how to try again: the one place that says so. Used by
 * the database client's callers, search, the outbox and the model client alike.
 */

/** An error and its causes, outermost first (drizzle wraps the driver's error; withDb wraps a failed connect). */
export function* causes(err: unknown, depth = 6): Generator<object> {
  for (let e = err, i = 0; e && typeof e === "object" && i < depth; e = (e as { cause?: unknown }).cause, i++) yield e;
}

/** The first Postgres error (one with a SQLSTATE or a driver code) in the cause chain. */
export function databaseError(err: unknown): { code: string; constraint?: string } | undefined {
  for (const e of causes(err)) if (typeof (e as { code?: unknown }).code === "string") return e as { code: string; constraint?: string };
  return undefined;
}

// The network or the server went away, or Postgres asks for the transaction again: serialization
// failure (40001), deadlock (40P01), connection class 08, shutdown and cannot-connect-now (57P01..03).
const TRANSIENT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "40001", "40P01", "57P01", "57P02", "57P03", "53300"]);
const TRANSIENT_MESSAGE =
  /ECONNREFUSED|ECONNRESET|connection (refused|reset|terminated|closed|lost)|socket (hang up|closed|ended)|network connection lost|timeout exceeded when trying to connect|has encountered a connection error/i;

export function isTransient(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (TRANSIENT_CODES.has(code) || code.startsWith("08"))) return true;
    // Our own "the database could not be reached" (withDb's failed connect): nothing was sent, so retrying is safe.
    if ((e as Error).name === "AppError" && code === "database_unavailable") return true;
    if ((e as { retryable?: unknown }).retryable === true && !(e as { overloaded?: unknown }).overloaded) return true;
    if (TRANSIENT_MESSAGE.test(String((e as { message?: unknown }).message ?? ""))) return true;
  }
  return false;
}

/**
 * A write Postgres will never take, however often it is retried: a data exception (class 22, e.g.
 * 22P05 a NUL in jsonb, 22021 bad encoding, 22001 too long) or an integrity violation (class 23).
 * Anything else (a schema a deploy has not migrated yet, an unknown error) is retried, not given up.
 */
export function isRejectedRow(err: unknown): boolean {
  const code = databaseError(err)?.code;
  return !!code && /^2[23][0-9A-Z]{3}$/.test(code);
}

export type RetryPolicy = { retries: number; baseDelayMs: number; maxDelayMs: number };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Full-jitter exponential backoff: a delay drawn from [0, min(max, base * 2^attempt)). */
export const backoffMs = (attempt: number, p: Omit<RetryPolicy, "retries">) => Math.random() * Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** attempt);

/** Runs `fn`, retrying transient faults with jittered backoff; the last error is rethrown. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy, retryable: (err: unknown) => boolean = isTransient): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.retries || !retryable(err)) throw err;
      await sleep(backoffMs(attempt, policy));
    }
  }
}

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * fetch for the model and embedding clients. workerd reports a pooled connection the server closed
 * as "Network connection lost" (no response, so safe to send again). The AI SDK retries only the
 * network failures it recognizes, and not this one: under load a turn failed, and a search came back
 * `search_unavailable` (9 of 600 at 100 threads, bench/README.md, "Turns"), for what a second
 * attempt fixes.
 */
export const fetchRetryingLostConnections = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
  withRetry(
    () => fetch(input, init),
    { retries: 2, baseDelayMs: 100, maxDelayMs: 400 },
    (err) => !init?.signal?.aborted && isTransient(err),
  );
