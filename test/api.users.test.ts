import { afterEach, describe, expect, it } from "vitest";
import { fetchApp, postJson, removeUser, uniqueEmail } from "./support/helpers.ts";

const made: string[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map(removeUser));
});

const expectError = async (res: Response, status: number, code: string) => {
  expect(res.status).toBe(status);
  expect(await res.json()).toEqual({ error: { code, message: expect.any(String) } });
};

describe("POST /api/v1/users", () => {
  it("creates a user with a normalized email", async () => {
    const email = uniqueEmail();
    const res = await postJson("/api/v1/users", { email: `  ${email.toUpperCase()} `, name: "Ada" });
    expect(res.status).toBe(201);
    const { user, apiKey } = (await res.json()) as { user: Record<string, string>; apiKey: string };
    made.push(user.id!);
    expect(user).toEqual({ id: expect.any(String), email, name: "Ada", tokenBudget: null, dailyTokenBudget: null, monthlyTokenBudget: null, createdAt: expect.any(String) });
    // The key names its user, so the user's authority can check it without Postgres.
    expect(apiKey).toMatch(/^tl_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(apiKey.slice(3, 35)).toBe(user.id!.replaceAll("-", ""));
  });

  it("refuses a second user with the same email with 409", async () => {
    const email = uniqueEmail();
    const first = await postJson("/api/v1/users", { email });
    made.push(((await first.json()) as { user: { id: string } }).user.id);
    await expectError(await postJson("/api/v1/users", { email }), 409, "conflict");
  });

  it("rejects an invalid email, unknown fields and a wrong type with 422", async () => {
    await expectError(await postJson("/api/v1/users", { email: "not-an-email" }), 422, "validation_failed");
    await expectError(await postJson("/api/v1/users", { email: uniqueEmail(), admin: true }), 422, "validation_failed");
    await expectError(await postJson("/api/v1/users", { email: uniqueEmail(), name: 42 }), 422, "validation_failed");
    await expectError(await postJson("/api/v1/users", [1, 2]), 422, "validation_failed");
  });

  it("rejects malformed JSON with 400 and an oversized body with 413", async () => {
    const bad = await fetchApp("/api/v1/users", { method: "POST", headers: { "content-type": "application/json" }, body: "{email:" });
    await expectError(bad, 400, "invalid_json");
    await expectError(await postJson("/api/v1/users", { email: uniqueEmail(), name: "x".repeat(70_000) }), 413, "payload_too_large");
  });
});
