import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { z } from "zod";
import { AppError, toAppError, validationError } from "../errors";

export type AppEnv = { Bindings: Env };

export const MAX_BODY_BYTES = 64 * 1024;

export const uuidParam = z.uuid();

/** Reads and validates a JSON body: 413 past the size limit, 400 for broken JSON, 422 for the wrong shape. */
export async function jsonBody<T extends z.ZodType>(c: Context, schema: T, maxBytes = MAX_BODY_BYTES): Promise<z.infer<T>> {
  const declared = Number(c.req.header("content-length") ?? 0);
  if (declared > maxBytes) throw new AppError("payload_too_large", `body exceeds ${maxBytes} bytes`);
  const text = await c.req.text();
  if (new TextEncoder().encode(text).byteLength > maxBytes) throw new AppError("payload_too_large", `body exceeds ${maxBytes} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new AppError("invalid_json", "body is not valid JSON");
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error);
  return parsed.data;
}

export function queryParams<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw validationError(parsed.error, "query");
  return parsed.data;
}

/** A malformed id names nothing, so it is the same 404 as an id that does not exist. */
export function idParam(c: Context, name: string, notFound: AppError): string {
  const parsed = uuidParam.safeParse(c.req.param(name));
  if (!parsed.success) throw notFound;
  return parsed.data;
}

export const onError: ErrorHandler = (err) => {
  const appError = toAppError(err);
  if (appError.status >= 500) console.error(JSON.stringify({ level: "error", code: appError.code, error: String((appError.cause as Error | undefined)?.stack ?? err) }));
  return Response.json(appError.toJSON(), { status: appError.status });
};

export const notFound: NotFoundHandler = (c) =>
  Response.json(new AppError("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`).toJSON(), { status: 404 });
