import { describe, expect, it } from "vitest";
import { DEV_MCP_SECRET_KEY, getConfig } from "../src/config.ts";
import { AppError } from "../src/errors.ts";
import { openToken, sealToken, tokenSecret } from "../src/mcp/secrets.ts";

const secret = "a-test-secret-of-at-least-32-characters";
const id = "7b0f3c1e-9a53-4d3e-8c1a-2f1e6b9d0a11";
const config = (vars: Record<string, string>) => getConfig(vars as unknown as Env);

describe("MCP server tokens at rest", () => {
  it("seal to AES-GCM text that holds nothing of the token, differently every time, and open again", async () => {
    const [a, b] = await Promise.all([sealToken(secret, id, "ghp_the-token"), sealToken(secret, id, "ghp_the-token")]);
    expect(a).toMatch(/^v1\.[\w-]{16}\.[\w-]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("the-token");
    expect(await openToken(secret, id, a)).toBe("ghp_the-token");
    expect(await openToken(secret, id, b)).toBe("ghp_the-token");
  });

  it("do not open under another key, for another server, or altered", async () => {
    const sealed = await sealToken(secret, id, "token");
    await expect(openToken(`${secret}!`, id, sealed)).rejects.toThrow();
    await expect(openToken(secret, "00000000-0000-4000-8000-000000000000", sealed)).rejects.toThrow();
    const [v, iv, ct] = sealed.split(".") as [string, string, string];
    const flipped = `${ct.slice(0, -2)}${ct.at(-2) === "A" ? "B" : "A"}${ct.at(-1)}`;
    await expect(openToken(secret, id, `${v}.${iv}.${flipped}`)).rejects.toThrow();
    await expect(openToken(secret, id, `v2.${iv}.${ct}`)).rejects.toThrow(/not a sealed MCP token/);
    await expect(openToken(secret, id, "plain-text")).rejects.toThrow(/not a sealed MCP token/);
  });

  it("take their key from MCP_SECRET_KEY; development has a default, production refuses clearly without one", () => {
    expect(tokenSecret(config({ MCP_SECRET_KEY: secret }))).toBe(secret);
    expect(tokenSecret(config({ ENVIRONMENT: "development" }))).toBe(DEV_MCP_SECRET_KEY);
    for (const vars of [{}, { ENVIRONMENT: "production" }, { MCP_SECRET_KEY: "  " }] as Record<string, string>[]) {
      const refusal = (() => {
        try {
          tokenSecret(config(vars));
        } catch (err) {
          return err;
        }
      })();
      expect(refusal).toBeInstanceOf(AppError);
      expect(refusal).toMatchObject({ code: "mcp_secret_missing", status: 503, message: expect.stringMatching(/MCP_SECRET_KEY/) });
    }
    expect(() => config({ MCP_SECRET_KEY: "too short" })).toThrow(/at least 32 characters/);
    expect(() => config({ MCP_ALLOWED_ORIGINS: "http://127.0.0.1:1/path" })).toThrow(/not an origin/);
  });
});
