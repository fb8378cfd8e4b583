import { routeAgentRequest } from "agents";
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../api/http";
import { withDb } from "../db/client";
import { getThread } from "../db/threads";
import { AppError } from "../errors";

const threadId = z.uuid();

/** Refuses, before the Durable Object wakes, any connection or request for a thread Postgres does not have. */
async function requireThread(request: Request, route: { name: string }, env: Env): Promise<Response | void> {
  const id = threadId.safeParse(route.name);
  const exists = id.success && (await withDb(env, (db) => getThread(db, id.data)));
  if (!exists) throw new AppError("thread_not_found", "thread not found");
  void request;
}

export async function routeToThreadAgent(c: Context<AppEnv>): Promise<Response> {
  const res = await routeAgentRequest(c.req.raw, c.env, {
    onBeforeConnect: (req, route) => requireThread(req, route, c.env),
    onBeforeRequest: (req, route) => requireThread(req, route, c.env),
  });
  if (!res) throw new AppError("not_found", "no such agent");
  return res;
}
