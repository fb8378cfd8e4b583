// How `npm run dev` shows the Worker's output to a person: each JSON log line as one short line
// (time, level, what happened), and wrangler's own request lines dropped, since every request
// already has its line. Anything else wrangler or workerd prints passes through as it is.

const ANSI = /\x1b\[[0-9;]*m/g;
const WRANGLER_REQUEST = /^\[wrangler:info\] [A-Z]+ \S+ \d{3} /;
const SHOWN_ELSEWHERE = new Set(["ts", "level", "event"]);

type Entry = Record<string, unknown> & { ts?: string; level?: string; event?: string };

const paint = (on: boolean, code: number, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

/** One line of the Worker's output as the terminal shows it; null to leave it out. `json` keeps log lines as they are. */
export function devLine(raw: string, opts: { color: boolean; json?: boolean }): string | null {
  const plain = raw.replace(ANSI, "");
  if (WRANGLER_REQUEST.test(plain)) return null;
  const at = plain.indexOf('{"ts":"');
  if (at < 0 || opts.json) return at < 0 ? raw : plain.slice(at);
  let e: Entry;
  try {
    e = JSON.parse(plain.slice(at)) as Entry;
  } catch {
    return raw;
  }
  const level =
    e.level === "error" ? paint(opts.color, 31, "error") : e.level === "warn" ? paint(opts.color, 33, "warn ") : paint(opts.color, 2, e.level === "debug" ? "debug" : "info ");
  return `${paint(opts.color, 2, (e.ts ?? "").slice(11, 19))} ${level} ${describe(e)}`;
}

function describe(e: Entry): string {
  if (e.event === "request") return `${e.method} ${e.path} ${e.status} ${e.durationMs}ms${rest(e, ["requestId", "method", "route", "path", "status", "durationMs"])}`;
  if (e.event === "turn") {
    const tools =
      Array.isArray(e.tools) && e.tools.length
        ? ` tools=${(e.tools as { name: string; outcome: string; ms: number }[]).map((t) => `${t.name}:${t.outcome}:${t.ms}ms`).join(",")}`
        : "";
    const head = `turn ${e.transport} ${e.status}${e.code ? ` ${e.code}` : ""} ${e.durationMs}ms${e.model ? ` ${e.model}` : ""}${tools}`;
    return head + rest(e, ["requestId", "turnId", "transport", "status", "code", "durationMs", "model", "offline", "tools", "frame", "cacheHit"]);
  }
  return `${e.event}${rest(e, [])}`;
}

const rest = (e: Entry, shown: string[]) =>
  Object.entries(e)
    .filter(([k, v]) => v !== undefined && v !== null && !SHOWN_ELSEWHERE.has(k) && !shown.includes(k))
    .map(([k, v]) => ` ${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join("");

/** Splits a stream's chunks into whole lines. */
export function lines(onLine: (line: string) => void): (chunk: string) => void {
  let pending = "";
  return (chunk) => {
    const parts = (pending + chunk).split("\n");
    pending = parts.pop()!;
    for (const line of parts) onLine(line);
  };
}
