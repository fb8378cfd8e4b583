/** What a log line may carry: ids, codes, figures. Message text only where a debug flag allows it. */
export type LogFields = Record<string, string | number | boolean | null | undefined | object>;

type Level = "debug" | "info" | "warn" | "error";

/**
 * One structured JSON line per event, the shape Workers Logs (observability) indexes, written at its
 * own console level: Workers Logs and `wrangler dev` show a warning as a warning, only an error as an
 * error. Levels say what happened to the service: a refused turn or request is the service working
 * (info); a warning is a fault it recovered from; an error is a fault someone must look at.
 */
export function log(level: Level, event: string, fields: LogFields = {}) {
  const line = JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else if (level === "debug") console.debug(line);
  else console.log(line);
}

/** An error and the chain of its causes, without stacks (drizzle's message names the query; the cause says why). */
export function describeError(err: unknown): string {
  const lines: string[] = [];
  for (let e = err, i = 0; e && i < 4; e = (e as { cause?: unknown }).cause, i++) lines.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  return lines.join(" <- ");
}

/** A request id a client may supply (X-Request-Id) when it is a short token; anything else is replaced. */
export function requestIdFrom(header: string | null | undefined): string {
  return header && /^[\w.:-]{1,64}$/.test(header) ? header : crypto.randomUUID();
}
