import { b64url, uuidFromHex } from "./keys.ts";

/** How long a ticket lets its holder connect to its thread. */
export const TICKET_TTL_SECONDS = 60;

/**
 * A ticket: `tkt_<user id, 32 hex>_<expiry, unix seconds>_<HMAC-SHA256, base64url>`. It names its
 * user (whose authority holds the signing secret) and is signed over the thread, the expiry and the
 * key it was issued with, so it opens one thread, for a minute, and dies with that key.
 */
const TICKET = /^tkt_([0-9a-f]{32})_(\d{10})_([A-Za-z0-9_-]{43})$/;

export type ParsedTicket = { userId: string; expiresAt: number; signature: string };

export function parseTicket(ticket: string): ParsedTicket | undefined {
  const m = TICKET.exec(ticket);
  return m ? { userId: uuidFromHex(m[1]!), expiresAt: Number(m[2]), signature: m[3]! } : undefined;
}

const hmacKey = (secret: Uint8Array, usage: "sign" | "verify") => crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, [usage]);
const signed = (t: { threadId: string; expiresAt: number; keyHash: string }) => new TextEncoder().encode(`${t.threadId}:${t.expiresAt}:${t.keyHash}`);

export async function signTicket(secret: Uint8Array, t: { userId: string; threadId: string; keyHash: string; expiresAt: number }): Promise<string> {
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret, "sign"), signed(t)));
  return `tkt_${t.userId.replaceAll("-", "")}_${t.expiresAt}_${b64url(sig)}`;
}

/** True when the ticket is unexpired and was signed for this thread and this key (HMAC verify: constant time). */
export async function verifyTicket(secret: Uint8Array, t: ParsedTicket, threadId: string, keyHash: string, nowSeconds = Date.now() / 1000): Promise<boolean> {
  if (t.expiresAt <= nowSeconds) return false;
  const sig = Uint8Array.from(atob(t.signature.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
  return crypto.subtle.verify("HMAC", await hmacKey(secret, "verify"), sig, signed({ threadId, expiresAt: t.expiresAt, keyHash }));
}
