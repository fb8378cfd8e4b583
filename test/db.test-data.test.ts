import { env } from "./support/env.ts";
import { describe, expect, it } from "vitest";
import { hashApiKey, newApiKey } from "../src/auth/keys.ts";
import { withDb } from "../src/db/client.ts";
import { createUser, deleteUser, deleteUsersInEmailDomain, getUser, TEST_EMAIL_DOMAIN, usersInEmailDomain } from "../src/db/users.ts";

describe("test-data cleanup", () => {
  it("finds and deletes only users of the test domain, never anyone else", async () => {
    // A subdomain of its own, so the test never removes users other tests are using right now.
    const domain = `cleanup-${crypto.randomUUID()}.${TEST_EMAIL_DOMAIN}`;
    await withDb(env, async (db) => {
      const make = async (email: string) => createUser(db, { email, apiKeyHash: await hashApiKey(newApiKey(crypto.randomUUID())) });
      const marked = [await make(`a@${domain}`), await make(`b@x.${domain}`)];
      const real = await make(`someone-${crypto.randomUUID()}@${domain}.example.com`);
      const lookalike = await make(`${domain}-${crypto.randomUUID()}@example.com`);
      try {
        const found = await usersInEmailDomain(db, domain);
        expect(found.map((u) => u.id).sort()).toEqual(marked.map((u) => u.id).sort());
        expect(found[0]).toMatchObject({ threads: 0, messages: 0 });
        expect(await deleteUsersInEmailDomain(db, domain)).toBe(2);
        expect(await getUser(db, real.id)).toBeDefined();
        expect(await getUser(db, lookalike.id)).toBeDefined();
        expect(await usersInEmailDomain(db, domain)).toEqual([]);
      } finally {
        await Promise.all([real, lookalike, ...marked].map((u) => deleteUser(db, u.id)));
      }
    });
  });
});
