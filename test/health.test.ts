import { describe, expect, it } from "vitest";
import { fetchApp } from "./support/helpers";

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
