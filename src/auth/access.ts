import { z } from "zod";
import { userAuthority } from "../authority/client.ts";
import type { Refusal, UserSnapshot } from "../authority/user-authority.ts";
import { getConfig } from "../config.ts";
import { withDb } from "../db/client.ts";
import type { Scope } from "../db/documents.ts";
import type { Thread } from "../db/schema.ts";
import { getThread } from "../db/threads.ts";
import { getUserByKeyHash } from "../db/users.ts";
import { AppError } from "../errors.ts";
import { hashApiKey, timingSafeEqual, userIdFromKey } from "./keys.ts";
import { parseTicket } from "./tickets.ts";

/**
 * Who may touch what, in one place. Users are checked by their authority (src/authority), which
 * answers without Postgres once it knows them; the admin by ADMIN_TOKEN. Someone else's thread is
 * the same 404 as a thread that does not exist.
 */
export type Principal = { kind: "admin" } | { kind: "user"; user: UserSnapshot; keyHash: string };

/** What a caller presented: a key (or the admin token), or a ticket for one thread. */
export type Credential = { kind: "token"; token: string } | { kind: "ticket"; ticket: string };

/** `Authorization: Bearer`; a malformed header is an empty (so invalid) token, never a fallback to the query. */
export function bearerToken(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  if (header === null) return undefined;
  return /^Bearer\s+(\S+)$/i.exec(header.trim())?.[1] ?? "";
}

/** The agent routes also take `?ticket=`, and `?token=` (v1 clients; browsers cannot set headers on a WebSocket). */
export function agentCredential(request: Request): Credential | undefined {
  const token = bearerToken(request);
  if (token !== undefined) return { kind: "token", token };
  const query = new URL(request.url).searchParams;
  const ticket = query.get("ticket");
  if (ticket !== null) return { kind: "ticket", ticket };
  const q = query.get("token");
  return q === null ? undefined : { kind: "token", token: q };
}

const refused = (r: Refusal) => AppError.fromRefusal(r);
const isAdmin = (env: Env, token: string) => {
  const { adminToken } = getConfig(env);
  return Boolean(adminToken && timingSafeEqual(token, adminToken));
};

/** The user a key names: in the key itself, or (keys of the older format) by its hash in Postgres. */
async function keyOwner(env: Env, token: string, keyHash: string): Promise<string | undefined> {
  return userIdFromKey(token) ?? (await withDb(env, (db) => getUserByKeyHash(db, keyHash)))?.id;
}

export async function authenticate(env: Env, token: string | undefined): Promise<Principal> {
  if (!token) throw new AppError("unauthorized", "missing bearer token");
  if (isAdmin(env, token)) return { kind: "admin" };
  const keyHash = await hashApiKey(token);
  const userId = await keyOwner(env, token, keyHash);
  if (!userId) throw new AppError("unauthorized", "invalid token");
  const r = await userAuthority(env, userId).authenticate(keyHash);
  if (!r.ok) throw refused(r);
  return { kind: "user", user: r.user, keyHash };
}

/**
 * May this credential open the thread's agent? Returns the caller and the thread's owner. A socket
 * (`maxSockets`) is also counted against the user's cap. The admin's access is checked in Postgres.
 */
export async function admitToThread(
  env: Env,
  credential: Credential | undefined,
  threadId: string,
  opts: { maxSockets?: number } = {},
): Promise<{ principal: Principal; ownerId: string }> {
  if (!credential || (credential.kind === "token" && !credential.token)) throw new AppError("unauthorized", "missing token: send Authorization: Bearer, ?ticket= or ?token=");
  if (credential.kind === "token" && isAdmin(env, credential.token)) {
    const thread = await withDb(env, (db) => getThread(db, threadId));
    if (!thread) throw new AppError("thread_not_found", "thread not found");
    return { principal: { kind: "admin" }, ownerId: thread.userId };
  }
  let userId: string | undefined;
  let keyHash: string | undefined;
  if (credential.kind === "ticket") userId = parseTicket(credential.ticket)?.userId;
  else userId = await keyOwner(env, credential.token, (keyHash = await hashApiKey(credential.token)));
  if (!userId) throw new AppError("unauthorized", credential.kind === "ticket" ? "invalid or expired ticket" : "invalid token");
  const r = await userAuthority(env, userId).admitToThread({
    threadId,
    keyHash,
    ticket: credential.kind === "ticket" ? credential.ticket : undefined,
    maxSockets: opts.maxSockets,
  });
  if (!r.ok) throw refused(r);
  return { principal: { kind: "user", user: r.user, keyHash: r.keyHash }, ownerId: r.user.id };
}

export function requireAdmin(env: Env, principal: Principal): void {
  if (principal.kind === "admin") return;
  if (!getConfig(env).adminToken) throw new AppError("admin_disabled", "admin routes are disabled: ADMIN_TOKEN is not set");
  throw new AppError("forbidden", "admin only");
}

/** The user a request acts for: the caller, or for the admin the user named in the request. */
export function actingUserId(principal: Principal, named?: string): string {
  if (principal.kind === "user") return principal.user.id;
  if (!named) throw new AppError("validation_failed", "the admin must name a userId");
  return named;
}

/**
 * One spelling of every id: lower-case uuids. Durable Objects are named by the id's exact string
 * (idFromName is case-sensitive), so any other spelling would be another agent of the same thread.
 */
export const canonicalId = (raw: string): string | undefined => {
  const id = raw.toLowerCase();
  return z.uuid().safeParse(id).success ? id : undefined;
};

/** An id in a path: canonical, or the same 404 as a missing row. */
export function idParam(raw: string, notFound: () => AppError): string {
  const id = canonicalId(raw);
  if (!id) throw notFound();
  return id;
}

/** Whose documents a caller sees: a user their own and the global ones; the admin, the global ones (which are its to change). */
export const documentScope = (p: Principal): Scope => ({ ownerId: p.kind === "user" ? p.user.id : null });

export const threadNotFound = () => new AppError("thread_not_found", "thread not found");

/** A thread the caller may use. Someone else's thread is the same 404 as a missing one. */
export async function ownedThread(env: Env, principal: Principal, rawId: string): Promise<Thread> {
  const id = idParam(rawId, threadNotFound);
  const thread = await withDb(env, (db) => getThread(db, id));
  if (!thread || (principal.kind === "user" && thread.userId !== principal.user.id)) throw threadNotFound();
  return thread;
}

/** Set by the Worker only (it forwards no client header of that name): who opened a thread agent's connection, and the thread's owner. */
export const PRINCIPAL_HEADER = "x-threadline-principal";
const ForwardedPrincipalSchema = z.union([
  z.strictObject({ ownerId: z.uuid(), userId: z.uuid(), keyHash: z.string().regex(/^[0-9a-f]{64}$/) }),
  z.strictObject({ ownerId: z.uuid(), admin: z.literal(true) }),
]);
export type ForwardedPrincipal = z.infer<typeof ForwardedPrincipalSchema>;

export function forwardedPrincipal(request: Request): ForwardedPrincipal | undefined {
  try {
    return ForwardedPrincipalSchema.parse(JSON.parse(request.headers.get(PRINCIPAL_HEADER) ?? ""));
  } catch {
    return undefined;
  }
}
