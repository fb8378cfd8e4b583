import { describe, expect, it } from "vitest";
import { devLine, lines } from "../scripts/lib/dev-log.ts";

const plain = { color: false };

describe("npm run dev's terminal output", () => {
  it("shows each request once, as one short line, and drops wrangler's own line for it", () => {
    const json = JSON.stringify({
      ts: "2026-12-01T23:54:28.332Z",
      level: "info",
      event: "request",
      requestId: "r1",
      method: "GET",
      route: "/api/v1/threads",
      path: "/api/v1/threads",
      status: 401,
      durationMs: 13,
    });
    expect(devLine(json, plain)).toBe("23:54:28 info  GET /api/v1/threads 401 13ms");
    expect(devLine("[wrangler:info] GET /api/v1/threads 401 Unauthorized (26ms)", plain)).toBeNull();
    expect(devLine("\x1b[32m[wrangler:info]\x1b[0m POST /api/v1/chat 200 OK (5ms)", plain)).toBeNull();
  });

  it("keeps a line's level: a warning (wrangler's ▲ prefix) is a warning, a refusal is info, other output passes as it is", () => {
    const warn = `▲ [WARNING] ${JSON.stringify({ ts: "2026-12-01T10:00:00.000Z", level: "warn", event: "outbox_flush_failed", threadId: "t1", code: "database_unavailable", backlog: 2 })}`;
    expect(devLine(warn, plain)).toBe("10:00:00 warn  outbox_flush_failed threadId=t1 code=database_unavailable backlog=2");
    const turn = JSON.stringify({
      ts: "2026-12-01T10:00:01.000Z",
      level: "info",
      event: "turn",
      transport: "ws",
      status: "refused",
      code: "rate_limited",
      durationMs: 3,
      threadId: "t1",
      tools: [],
    });
    expect(devLine(turn, plain)).toBe("10:00:01 info  turn ws refused rate_limited 3ms threadId=t1");
    expect(devLine(turn, { color: false, json: true })).toBe(turn);
    expect(devLine("[wrangler:info] Ready on http://127.0.0.1:8787", plain)).toBe("[wrangler:info] Ready on http://127.0.0.1:8787");
    expect(devLine(JSON.stringify({ ts: "2026-12-01T10:00:02.000Z", level: "error", event: "model_error" }), { color: true })).toContain("\x1b[31merror\x1b[0m");
  });

  it("reassembles lines split across chunks", () => {
    const seen: string[] = [];
    const feed = lines((l) => seen.push(l));
    feed("one\ntw");
    feed("o\nthree");
    expect(seen).toEqual(["one", "two"]);
  });
});
