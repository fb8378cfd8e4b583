import { Client as NeonClient } from "@neondatabase/serverless";
import { drizzle as drizzleNeon } from "drizzle-orm/neon-serverless";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type { Duplex } from "node:stream";
import pg from "pg";
import { CloudflareSocket } from "pg-cloudflare";
import { getConfig } from "../config.ts";
import { AppError } from "../errors.ts";

/** What `db.execute` resolves to on both drivers: the part of pg's QueryResult they share. */
export type DbQueryResult<Row> = { rows: Row[]; rowCount: number | null };
export interface DbQueryResultHKT extends PgQueryResultHKT {
  type: DbQueryResult<this["row"]>;
}

/**
 * The one database handle every query module takes, whichever transport carries it. Without the
 * relational schema (no query uses `db.query`): drizzle walks it on every connection otherwise.
 */
export type Db = PgDatabase<DbQueryResultHKT>;

const CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_WAIT_MS = 1_000;

/**
 * Runs `fn` on a connection of its own and closes it after. Behind Hyperdrive a connection per
 * request is the intended pattern: Hyperdrive pools the real connections to Postgres. Neon's
 * WebSocket connections cannot outlive the request that opened them in a Worker, so they are per
 * call too (Neon's own pooler, in a `-pooler` URL, is what keeps that cheap on its side).
 */
export async function withDb<T>(env: Env, fn: (db: Db) => Promise<T>): Promise<T> {
  const client = env.HYPERDRIVE ? pgClient(env.HYPERDRIVE.connectionString) : neonClient(env);
  // After end() the socket's read loop may still reject; without a listener that is an unhandled error.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    client.end().catch(() => {});
    throw new AppError("database_unavailable", "database unavailable", { cause: err });
  }
  try {
    const db: Db = client instanceof pg.Client ? drizzlePg(client) : drizzleNeon(client);
    return await fn(db);
  } finally {
    const closed = client.end().catch(() => {});
    // Neon: wait (briefly) for the WebSocket to close. A Durable Object destroyed right after this call
    // (thread deletion) would otherwise receive the close event after its abort: an uncaught exception.
    if (!(client instanceof pg.Client)) await within(closed, CLOSE_WAIT_MS);
  }
}

const within = (p: Promise<unknown>, ms: number) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
};

function pgClient(connectionString: string): pg.Client {
  return new pg.Client({
    connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // pg finds this socket through a CommonJS require of pg-cloudflare's "workerd" export, which the
    // Workers test runner resolves to the empty Node stub; naming it here works in every bundler.
    // Plain TCP: Hyperdrive terminates TLS to the database itself.
    stream: () => new CloudflareSocket(false) as unknown as Duplex,
  });
}

function neonClient(env: Env): NeonClient {
  const { DATABASE_URL, NEON_WS_PROXY } = getConfig(env);
  if (!DATABASE_URL) throw new AppError("database_unavailable", "no database configured: bind HYPERDRIVE or set DATABASE_URL");
  const client = new NeonClient({ connectionString: DATABASE_URL, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  if (NEON_WS_PROXY) {
    // A plain Postgres behind a local WebSocket-to-TCP proxy (tests, benchmarks): no TLS on the
    // WebSocket, and no pipelined startup, which assumes Neon's cleartext password exchange.
    Object.assign(client.neonConfig, { wsProxy: NEON_WS_PROXY, useSecureWebSocket: false, pipelineConnect: false });
  }
  return client;
}
