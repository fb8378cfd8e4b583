import { routeAgentRequest } from "agents";
import type { Context } from "hono";
import type { AppEnv } from "../api/http.ts";
import { admitToThread, agentCredential, idParam, PRINCIPAL_HEADER, threadNotFound, type ForwardedPrincipal, type Principal } from "../auth/access.ts";
import { getConfig } from "../config.ts";
import { AppError, toAppError } from "../errors.ts";

/**
 * The only two shapes under /agents/ that reach a Durable Object: the WebSocket upgrade at
 * `/agents/thread-agent/<id>` and `GET /agents/thread-agent/<id>/get-messages`. Anything else
 * (sub-agent paths, other classes, encoded slashes, other methods) is a JSON 404 before any
 * object wakes. An id in another letter case is the same thread: it is routed to the canonical agent.
 */
const AGENT_PATH = /^\/agents\/thread-agent\/([^/]+)(\/get-messages)?$/;

/**
 * Request headers the agent may see: what a WebSocket handshake and a JSON GET need. The SDK reads
 * headers of its own for routing (`x-cf-agents-subagent-url`, `x-agents-lifecycle-props`, ...); as
 * with everything not named here, a client's copy never reaches the agent.
 */
const FORWARDED_HEADERS = [
  "upgrade",
  "connection",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "accept",
  "accept-language",
  "user-agent",
  "origin",
];

export async function routeToThreadAgent(c: Context<AppEnv>): Promise<Response> {
  const url = new URL(c.req.url);
  const match = AGENT_PATH.exec(url.pathname);
  const socket = c.req.header("upgrade")?.toLowerCase() === "websocket";
  if (!match || c.req.method !== "GET" || socket === Boolean(match[2])) throw new AppError("not_found", `no route for ${c.req.method} ${url.pathname}`);
  const threadId = idParam(match[1]!, threadNotFound);
  const credential = agentCredential(c.req.raw);
  let admitted: { principal: Principal; ownerId: string };
  try {
    admitted = await admitToThread(c.env, credential, threadId, { maxSockets: socket ? getConfig(c.env).MAX_SOCKETS_PER_USER : undefined });
  } catch (err) {
    const e = toAppError(err);
    // A browser cannot read a refused handshake: over the cap, the socket opens and closes with a reason.
    if (socket && e.code === "too_many_connections") return closedSocket(4429, e.message);
    throw e;
  }
  const { principal, ownerId } = admitted;
  c.set("principal", principal);
  const forwarded: ForwardedPrincipal = principal.kind === "admin" ? { ownerId, admin: true } : { ownerId, userId: principal.user.id, keyHash: principal.keyHash };
  const headers = new Headers();
  for (const name of FORWARDED_HEADERS) {
    const value = c.req.header(name);
    if (value !== undefined) headers.set(name, value);
  }
  headers.set(PRINCIPAL_HEADER, JSON.stringify(forwarded));
  // Of the query only the client's connection id passes: credentials stay at the edge (the agent keeps a
  // socket's URL with it), and SDK switches such as `__agents_transport` are not a client's to set.
  const target = new URL(`/agents/thread-agent/${threadId}${match[2] ?? ""}`, url.origin);
  const pk = url.searchParams.get("_pk");
  if (pk && /^[\w-]{1,64}$/.test(pk)) target.searchParams.set("_pk", pk);
  const res = await routeAgentRequest(new Request(target, { method: "GET", headers }), c.env);
  if (!res) throw new AppError("not_found", "no such agent");
  return res;
}

/** A WebSocket that is accepted only to be closed with `code` and `reason` (4xxx: clients do not retry). */
export function closedSocket(code: number, reason: string): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  server.close(code, reason.slice(0, 120));
  return new Response(null, { status: 101, webSocket: client });
}
