import type { Connection } from "agents";
import { forwardedPrincipal } from "../auth/access";
import { userAuthority } from "../authority/client";

/** Kept with each socket through hibernation: whose it is and which key opened it (for revocation and admission). */
export function connectionTags(request: Request): string[] {
  const p = forwardedPrincipal(request);
  return !p ? [] : "admin" in p ? ["admin"] : [`user:${p.userId}`, `key:${p.keyHash}`];
}

const tagged = (connection: Connection, prefix: string) => connection.tags.find((t) => t.startsWith(prefix))?.slice(prefix.length);
export const keyOf = (connection: Connection) => tagged(connection, "key:");
export const userOf = (connection: Connection) => tagged(connection, "user:");

type SocketsHost = { env: Env; threadId: () => string; connections: (tag?: string) => Iterable<Connection>; waitUntil: (p: Promise<unknown>) => void };

/**
 * A thread's sockets as their users' authorities see them: each user's count (their cap across
 * threads is kept there), and revocation, which closes the sockets of a rotated key or a deleted
 * user and refuses any frame such a key still sends.
 */
export class Sockets {
  readonly #revokedKeys = new Set<string>();

  constructor(private readonly host: SocketsHost) {}

  get count(): number {
    return [...this.host.connections()].length;
  }

  isRevoked(connection: Connection): boolean {
    const key = keyOf(connection);
    return key !== undefined && this.#revokedKeys.has(key);
  }

  /** Closes the user's sockets opened with `keyHashes` (or all of them) with 4401; returns how many of theirs stay open. */
  revoke(userId: string, keyHashes: string[] | "all", reason: string): number {
    const tags = keyHashes === "all" ? [`user:${userId}`] : keyHashes.map((h) => `key:${h}`);
    if (keyHashes !== "all") for (const h of keyHashes) this.#revokedKeys.add(h);
    for (const tag of tags) for (const c of this.host.connections(tag)) c.close(4401, reason);
    return this.open(userId);
  }

  open(userId: string, without?: string): number {
    return [...this.host.connections(`user:${userId}`)].filter((c) => c.id !== without).length;
  }

  /** Tells the user's authority their count here, after the fact (best effort): on every connect and close. */
  report(userId: string, without?: string): void {
    this.host.waitUntil(userAuthority(this.host.env, userId).sockets(this.host.threadId(), this.open(userId, without)).catch(() => {}));
  }
}
