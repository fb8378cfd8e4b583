import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";

/**
 * MCP servers' bearer tokens at rest: AES-256-GCM under a key derived (HKDF-SHA-256) from the
 * MCP_SECRET_KEY Worker secret, each bound (as additional data) to its server's id, so a
 * ciphertext copied to another row does not open. Sealed: `v1.<iv>.<ciphertext>`, base64url.
 */
const VERSION = "v1";
const INFO = new TextEncoder().encode("threadline/mcp-server-token/v1");
const keys = new Map<string, Promise<CryptoKey>>();

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
const unb64url = (s: string) => Uint8Array.from(atob(s.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle
      .importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"])
      .then((base) =>
        crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: INFO }, base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]),
      );
    keys.set(secret, key);
  }
  return key;
}

/** The key's secret, or a clear refusal: in production MCP_SECRET_KEY must be set for tokens to be stored or used. */
export function tokenSecret(config: Config): string {
  if (config.mcpSecretKey) return config.mcpSecretKey;
  throw new AppError("mcp_secret_missing", "MCP server tokens are disabled: the MCP_SECRET_KEY secret is not set");
}

const additionalData = (serverId: string) => new TextEncoder().encode(`mcp_servers:${serverId}`);

export async function sealToken(secret: string, serverId: string, token: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: additionalData(serverId) }, await keyFor(secret), new TextEncoder().encode(token));
  return `${VERSION}.${b64url(iv)}.${b64url(new Uint8Array(ct))}`;
}

/** The token, or an error when the ciphertext was altered, belongs to another server, or was sealed under another key. */
export async function openToken(secret: string, serverId: string, sealed: string): Promise<string> {
  const [version, iv, ct, extra] = sealed.split(".");
  if (version !== VERSION || !iv || !ct || extra !== undefined) throw new Error("not a sealed MCP token");
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64url(iv), additionalData: additionalData(serverId) }, await keyFor(secret), unb64url(ct));
  return new TextDecoder().decode(plain);
}
