import { describe, expect, it } from "vitest";
import { hashApiKey, newApiKey, userIdFromKey } from "../src/auth/keys.ts";
import { parseTicket, signTicket, verifyTicket } from "../src/auth/tickets.ts";

const userId = "0f8fad5b-d9cb-469f-a165-70867728950e";
const threadId = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

describe("API keys", () => {
  it("carry the user id they were made for, and keys of the older format carry none", () => {
    const key = newApiKey(userId);
    expect(key).toMatch(/^tl_0f8fad5bd9cb469fa16570867728950e_[A-Za-z0-9_-]{43}$/);
    expect(userIdFromKey(key)).toBe(userId);
    expect(newApiKey(userId)).not.toBe(key);
    expect(userIdFromKey("tl_" + "a".repeat(43))).toBeUndefined();
    expect(userIdFromKey(key + "x")).toBeUndefined();
    expect(userIdFromKey(key.replace("tl_0f", "tl_0F"))).toBeUndefined();
  });
});

describe("tickets", () => {
  const secret = new Uint8Array(32).fill(7);
  const now = 1_800_000_000;
  it("verify for their thread and key until they expire, and for nothing else", async () => {
    const keyHash = await hashApiKey(newApiKey(userId));
    const ticket = await signTicket(secret, { userId, threadId, keyHash, expiresAt: now + 60 });
    const parsed = parseTicket(ticket)!;
    expect(parsed).toMatchObject({ userId, expiresAt: now + 60 });
    expect(await verifyTicket(secret, parsed, threadId, keyHash, now)).toBe(true);
    expect(await verifyTicket(secret, parsed, threadId, keyHash, now + 60)).toBe(false);
    expect(await verifyTicket(secret, parsed, userId, keyHash, now)).toBe(false);
    expect(await verifyTicket(secret, parsed, threadId, await hashApiKey("other"), now)).toBe(false);
    expect(await verifyTicket(new Uint8Array(32).fill(8), parsed, threadId, keyHash, now)).toBe(false);
    expect(await verifyTicket(secret, { ...parsed, expiresAt: now + 3600 }, threadId, keyHash, now)).toBe(false);
    for (const bad of ["", "tkt_", ticket.slice(0, -1), ticket.replace("tkt_", "tl_"), `${ticket}x`]) expect(parseTicket(bad)).toBeUndefined();
  });
});
