import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { actingUserId as actingUser, authenticate as authenticateToken, bearerToken, ownedThread as owned, type Principal } from "../auth/access";
import type { Thread } from "../db/schema";
import { AppError, toAppError, validationError } from "../errors";
import { describeError, log, type LogFields } from "../observability/log";

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

/** A router of authenticated v1 routes: bodies are size-limited and every request has a Principal. */
export function apiRouter() {
  const r = router();
  r.use("*", limitBody, authenticate);
  return r;
}

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), retryAfter: z.number().optional() }) })
  .openapi("Error");

/** OpenAPI response entries for the error statuses a route can answer. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [s, { description: errorDescriptions[s] ?? "Error", content: { "application/json": { schema: ErrorSchema } } }]),
  );
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

export const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new AppError("payload_too_large", `body exceeds ${MAX_BODY_BYTES} bytes`);
  },
});

export const actingUserId = (c: Context<AppEnv>, named?: string) => actingUser(c.get("principal"), named);

export const ownedThread = (c: Context<AppEnv>, id: string): Promise<Thread> => owned(c.env, c.get("principal"), id);

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
