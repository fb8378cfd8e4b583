import { routeAgentRequest } from "agents";
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../api/http";
import { requestToken, resolvePrincipal } from "../auth/principal";
import { withDb } from "../db/client";
import { getThread } from "../db/threads";
import { AppError } from "../errors";

/**
 * Admits, before the Durable Object wakes, only callers who may use the thread: a valid token
 * (header, or `?token=` since browsers cannot set headers on a WebSocket) and a thread that exists
 * in Postgres and is theirs. Someone else's thread is the same 404 as a missing one.
 */
async function admit(request: Request, route: { name: string }, env: Env): Promise<void> {
  await withDb(env, async (db) => {
    const principal = await resolvePrincipal(env, db, requestToken(request, true));
    const id = z.uuid().safeParse(route.name);
    const thread = id.success ? await getThread(db, id.data) : undefined;
    if (!thread || (principal.kind === "user" && thread.userId !== principal.user.id)) throw new AppError("thread_not_found", "thread not found");
  });
}

export async function routeToThreadAgent(c: Context<AppEnv>): Promise<Response> {
  const res = await routeAgentRequest(c.req.raw, c.env, {
    onBeforeConnect: (req, route) => admit(req, route, c.env),
    onBeforeRequest: (req, route) => admit(req, route, c.env),
  });
  if (!res) throw new AppError("not_found", "no such agent");
  return res;
}
