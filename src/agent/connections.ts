import type { Connection } from "agents";
import { forwardedPrincipal, type ForwardedPrincipal } from "../auth/access.ts";
import { userAuthority } from "../authority/client.ts";
import { getConfig } from "../config.ts";
import { closedSocket } from "./route.ts";

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
  #onClosed: (() => void) | undefined;

  private readonly host: SocketsHost;
  constructor(host: SocketsHost) {
    this.host = host;
  }

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

  /** A WebSocket handshake over the thread's cap, accepted only to be closed (the caller's count reported); undefined when it may open. */
  overCap(request: Request, principal: ForwardedPrincipal): Response | undefined {
    const cap = getConfig(this.host.env).MAX_SOCKETS_PER_THREAD;
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || this.count < cap) return undefined;
    if ("userId" in principal) this.report(principal.userId);
    return closedSocket(4429, `too many open connections: at most ${cap} on this thread`);
  }

  opened(request: Request): void {
    const p = forwardedPrincipal(request);
    if (p && "userId" in p) this.report(p.userId);
  }

  closed(connection: Connection): void {
    const user = userOf(connection);
    if (user) this.report(user, connection.id);
    this.#onClosed?.();
  }

  /**
   * Closes every socket, with a code clients do not retry, and waits for their close handshakes (a
   * second at most): a socket still open when destroy() resets the object logs "Uncaught Error: destroyed".
   */
  async closeAll(code: number, reason: string): Promise<void> {
    const open = [...this.host.connections()];
    if (!open.length) return;
    let left = open.length;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = new Promise<void>((resolve) => {
      this.#onClosed = () => void (--left <= 0 && resolve());
      timer = setTimeout(resolve, 1000);
    });
    for (const c of open) c.close(code, reason);
    await closed.finally(() => clearTimeout(timer));
  }

  /** Tells the user's authority their count here, after the fact (best effort): on every connect and close. */
  report(userId: string, without?: string): void {
    this.host.waitUntil(
      userAuthority(this.host.env, userId)
        .sockets(this.host.threadId(), this.open(userId, without))
        .catch(() => {}),
    );
  }
}
