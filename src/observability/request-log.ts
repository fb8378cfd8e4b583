import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "../api/http.ts";
import { log, requestIdFrom, type LogFields } from "./log.ts";

const THREAD_PATH = /^\/(?:api\/v1\/(?:threads|chat)|agents\/thread-agent)\/([0-9a-f-]{36})(?:\/|$)/i;

/**
 * One JSON line per request: id (echoed as X-Request-Id), route pattern, status, duration, caller
 * and thread. Never the query string (it may hold `?token=`), headers or bodies.
 */
export const requestLog: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = Date.now();
  const requestId = requestIdFrom(c.req.header("x-request-id"));
  c.set("requestId", requestId);
  const fields: LogFields = {};
  c.set("logFields", fields);
  await next();
  // A WebSocket upgrade's 101 response is immutable.
  if (c.res.status !== 101) c.header("x-request-id", requestId);
  const principal = c.get("principal");
  const { pathname } = new URL(c.req.url);
  const status = c.res.status;
  log(status >= 500 ? "error" : "info", "request", {
    requestId,
    method: c.req.method,
    route: routePath(c, -1),
    path: pathname,
    status,
    durationMs: Date.now() - started,
    userId: principal?.kind === "user" ? principal.user.id : principal?.kind,
    threadId: THREAD_PATH.exec(pathname)?.[1],
    ...fields,
  });
};
