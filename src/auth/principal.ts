import { getConfig } from "../config";
import type { Db } from "../db/client";
import type { User } from "../db/schema";
import { getUserByKeyHash } from "../db/users";
import { AppError } from "../errors";
import { hashApiKey, timingSafeEqual } from "./keys";

/** Who is calling: the admin (ADMIN_TOKEN) or a user (their API key). */
export type Principal = { kind: "admin" } | { kind: "user"; user: User };

/** The bearer token of a request: the Authorization header, or `?token=` where browsers cannot set headers (WebSocket). */
export function requestToken(request: Request, allowQuery: boolean): string | undefined {
  const header = request.headers.get("authorization");
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    return match?.[1] ?? "";
  }
  return allowQuery ? (new URL(request.url).searchParams.get("token") ?? undefined) : undefined;
}

export async function resolvePrincipal(env: Env, db: Db, token: string | undefined): Promise<Principal> {
  if (!token) throw new AppError("unauthorized", "missing bearer token");
  const { adminToken } = getConfig(env);
  if (adminToken && timingSafeEqual(token, adminToken)) return { kind: "admin" };
  const user = await getUserByKeyHash(db, await hashApiKey(token));
  if (!user) throw new AppError("unauthorized", "invalid token");
  return { kind: "user", user };
}

export function requireAdmin(env: Env, principal: Principal): void {
  if (principal.kind === "admin") return;
  if (!getConfig(env).adminToken) throw new AppError("admin_disabled", "admin routes are disabled: ADMIN_TOKEN is not set");
  throw new AppError("forbidden", "admin only");
}
