import { describe, expect, it } from "vitest";
import { fetchApp } from "./support/helpers.ts";

describe("GET /health", () => {
  it("reports the database as reachable", async () => {
    const res = await fetchApp("/health");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; database: { status: string; latencyMs: number } };
    expect(body.status).toBe("ok");
    expect(body.database.status).toBe("ok");
    expect(body.database.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("answers unknown routes with a 404 in the error format", async () => {
    const res = await fetchApp("/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "not_found", message: expect.any(String) } });
  });
});

describe("GET /health with a bad configuration", () => {
  it("answers 503 naming the setting, instead of 200 while every API route fails", async () => {
    const { env } = await import("cloudflare:workers");
    const { health } = await import("../src/api/health.ts");
    const res = await health.fetch(new Request("http://x/"), { ...env, TURN_RATE_LIMIT: "1000000" });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { config: { status: string }; error: { code: string; message: string } };
    expect(body.config.status).toBe("invalid");
    expect(body.error.code).toBe("invalid_configuration");
    expect(body.error.message).toContain("TURN_RATE_LIMIT");
  });
});
