const KEY_PREFIX = "tl_";
const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

/**
 * A new API key for a user: `tl_<user id, 32 hex>_<32 random bytes, base64url>`. The user id in it
 * says which user's authority to ask, so a key is checked without a Postgres lookup (and during an
 * outage); the random part is the secret. Keys made before this format (`tl_<43 chars>`) still work.
 */
export function newApiKey(userId: string): string {
  return `${KEY_PREFIX}${userId.replaceAll("-", "")}_${b64url(crypto.getRandomValues(new Uint8Array(32)))}`;
}

const KEYED = /^tl_([0-9a-f]{32})_[A-Za-z0-9_-]{43}$/;

/** The user id a key names, or undefined for a key of the older format (or not a key). */
export function userIdFromKey(key: string): string | undefined {
  const m = KEYED.exec(key);
  return m ? uuidFromHex(m[1]!) : undefined;
}

export const uuidFromHex = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;

/** Keys are 256-bit random, so a plain SHA-256 is enough to store them safely (no slow hash needed). */
export async function hashApiKey(key: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key))));
}

/** Compares two secrets in time independent of where they differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  if (ea.byteLength !== eb.byteLength) return false;
  return crypto.subtle.timingSafeEqual(ea, eb);
}

export { b64url, hex };
