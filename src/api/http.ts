import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { actingUserId as actingUser, authenticate as authenticateToken, bearerToken, ownedThread as owned, type Principal } from "../auth/access.ts";
import { userAuthority } from "../authority/client.ts";
import type { Thread } from "../db/schema.ts";
import { AppError, toAppError, validationError } from "../errors.ts";
import { flagsFor, type Flags } from "../flags/index.ts";
import { describeError, log, type LogFields } from "../observability/log.ts";
import { describeUnstorable, findUnstorable } from "../validation/storable.ts";

/** `logFields`: what a handler adds to its request's log line (e.g. a search's cache hit). */
export type AppEnv = { Bindings: Env; Variables: { principal: Principal; requestId: string; logFields: LogFields } };

export const MAX_BODY_BYTES = 64 * 1024;

/** Every router is built here, so validation failures take the one error shape. */
export const router = () =>
  new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });

/** A router of authenticated v1 routes: bodies are size-limited, every request has a Principal, and its input can be stored. */
export function apiRouter() {
  const r = router();
  r.use("*", limitBody, authenticate, storableInput);
  return r;
}

export const ErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), retryAfter: z.number().optional() }) }).openapi("Error");

/** OpenAPI response entries for the error statuses a route can answer. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, { description: errorDescriptions[s] ?? "Error", content: { "application/json": { schema: ErrorSchema } } }]));
}
const errorDescriptions: Record<number, string> = {
  400: "Malformed request",
  401: "Missing or invalid token",
  402: "Token budget spent",
  403: "Not allowed",
  404: "Not found (or not yours)",
  409: "Conflict",
  413: "Body too large",
  422: "Invalid input",
  429: "Rate limited; see Retry-After",
  503: "Database unavailable",
};

export const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
export const jsonBody = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { "application/json": { schema } } } });

export const bearerAuth = [{ bearerAuth: [] }];

/** Resolves the caller from `Authorization: Bearer`; 401 without a valid token. */
export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("principal", await authenticateToken(c.env, bearerToken(c.req.raw)));
  await next();
};

// Hono's json validator parses a body whose media type passes this test; so this check sees every body a route reads.
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Client input Postgres could not store (NUL, a lone surrogate) or nested too deep to handle is
 * refused here with 422, before any route runs: query values, and a JSON body. Path params are ids
 * and flag names, each checked against its own allow-list before it reaches SQL.
 */
/**
 * What of a body the server keeps. The AI SDK's chat body carries the whole transcript, of which
 * only the last message is used: older history may hold text the server itself made storable
 * after streaming it, and must not make every later request of that client fail.
 */
const keptOf = (c: Context<AppEnv>, body: unknown) => {
  const messages = (body as { messages?: unknown } | null)?.messages;
  return new URL(c.req.url).pathname.replace(/\/$/, "") === "/api/v1/chat" && Array.isArray(messages) ? { ...(body as object), messages: messages.slice(-1) } : body;
};

export const storableInput: MiddlewareHandler<AppEnv> = async (c, next) => {
  const query = Object.fromEntries(Object.entries(c.req.queries()).map(([k, v]) => [k, v.length === 1 ? v[0] : v]));
  const badQuery = findUnstorable(query);
  if (badQuery) throw new AppError("validation_failed", describeUnstorable(badQuery, "query"));
  if (c.req.raw.body && JSON_MEDIA_TYPE.test((c.req.header("content-type") ?? "").split(";")[0]!.trim())) {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return next(); // malformed: the route's validator answers 400 invalid_json
    }
    const bad = findUnstorable(keptOf(c, body));
    if (bad) throw new AppError("validation_failed", describeUnstorable(bad, "body"));
    // Hono caches the body's text, not its parse: without this the validator would parse it again.
    c.req.json = <T>() => Promise.resolve(body as T);
  }
  await next();
};

const RATE_FLAGS = {
  search: ["search_api_rate_limit", "search_api_rate_window_seconds"],
  ingest: ["ingest_rate_limit", "ingest_rate_window_seconds"],
} as const;

/**
 * One call of a user's against a per-user rate limit (`search`, `ingest`), counted by their
 * authority so it holds across isolates: 429 with Retry-After over it. The admin is not limited.
 * Returns the caller's flags, undefined for the admin.
 */
export async function takeUserRate(c: Context<AppEnv>, bucket: keyof typeof RATE_FLAGS): Promise<Flags | undefined> {
  const p = c.get("principal");
  if (p.kind !== "user") return undefined;
  const flags = await flagsFor(c.env, { userId: p.user.id });
  const [limit, windowSeconds] = RATE_FLAGS[bucket].map((f) => flags[f]) as [number, number];
  const r = await userAuthority(c.env, p.user.id).take(bucket, limit, windowSeconds);
  if (!r.ok) throw new AppError("rate_limited", `too many ${bucket} requests: at most ${limit} per ${windowSeconds} s`, { retryAfter: r.retryAfterSeconds });
  return flags;
}

export const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new AppError("payload_too_large", `body exceeds ${MAX_BODY_BYTES} bytes`);
  },
});

export const actingUserId = (c: Context<AppEnv>, named?: string) => actingUser(c.get("principal"), named);

export const ownedThread = (c: Context<AppEnv>, id: string): Promise<Thread> => owned(c.env, c.get("principal"), id);

/** The caller's key hash (none for the admin): a turn's admission checks it is still valid. */
export const callerKey = (c: Context<AppEnv>) => {
  const p = c.get("principal");
  return p.kind === "user" ? p.keyHash : undefined;
};

/** Hono's own refusals (malformed JSON, a body that is not JSON) in the one error shape. */
function fromHttpException(err: HTTPException): AppError {
  if (err.status === 415) return new AppError("unsupported_media_type", "send the body as application/json");
  if (err.status === 413) return new AppError("payload_too_large", err.message || "body too large");
  if (/json/i.test(err.message)) return new AppError("invalid_json", "body is not valid JSON");
  return new AppError(err.status === 401 ? "unauthorized" : "bad_request", err.message || "bad request");
}

export const onError: ErrorHandler<AppEnv> = (err, c) => {
  const appError = err instanceof HTTPException && err.status < 500 ? fromHttpException(err) : toAppError(err);
  if (appError.status >= 500) log("error", "request_failed", { requestId: c.get("requestId"), code: appError.code, error: describeError(appError.cause ?? err) });
  return appError.toResponse();
};

export const notFound: NotFoundHandler = (c) => new AppError("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`).toResponse();
