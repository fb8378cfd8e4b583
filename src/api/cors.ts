import type { MiddlewareHandler } from "hono";
import { cors as honoCors } from "hono/cors";
import { getConfig } from "../config.ts";
import type { AppEnv } from "./http.ts";

const allowOrigin = honoCors({
  origin: (origin) => origin,
  allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
  allowHeaders: ["authorization", "content-type", "x-request-id"],
  exposeHeaders: ["x-request-id", "retry-after", "x-vercel-ai-ui-message-stream"],
  maxAge: 600,
});

/**
 * Cross-origin browser apps (a useChat page on another site): off unless CORS_ORIGINS lists the
 * page's origin. That origin may then send the API's bearer-authenticated requests and read the
 * answers (no cookies are involved, so no credentials mode); a request from any other origin is
 * handled as if CORS did not exist, so its browser keeps the answer from the page.
 */
export const cors: MiddlewareHandler<AppEnv> = async (c, next) => {
  const allowed = getConfig(c.env).CORS_ORIGINS;
  if (!allowed.length) return next();
  const origin = c.req.header("origin");
  if (origin && allowed.includes(origin)) return allowOrigin(c, next);
  await next();
  // The answer depends on the origin: no cache may hand this one to an allowed origin.
  c.header("vary", "Origin", { append: true });
};
