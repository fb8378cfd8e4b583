import { afterEach, describe, expect, it } from "vitest";
import { fetchApp, setDatabase } from "./support/helpers.ts";

afterEach(async () => {
  await setDatabase("up");
});

describe("GET /health when Postgres is down", () => {
  it("answers 503 with the database status, then 200 once it is back", async () => {
    await setDatabase("down");
    const down = await fetchApp("/health");
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({
      status: "unavailable",
      database: { status: "unreachable" },
      outbox: expect.objectContaining({ threads: expect.any(Number), messages: expect.any(Number) }),
      error: { code: "database_unavailable", message: expect.any(String) },
    });
    await setDatabase("up");
    expect((await fetchApp("/health")).status).toBe(200);
  });

  it("maps a failing API call to 503, not 500", async () => {
    await setDatabase("down");
    const res = await fetchApp(`/api/v1/threads/${crypto.randomUUID()}/messages`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("database_unavailable");
  });
});
