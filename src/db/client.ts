import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import type { Duplex } from "node:stream";
import pg from "pg";
import { CloudflareSocket } from "pg-cloudflare";
import { AppError } from "../errors";
import * as schema from "./schema";

export type Db = NodePgDatabase<typeof schema>;

const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Runs `fn` on a connection of its own and closes it after. Behind Hyperdrive a connection per
 * request is the intended pattern: Hyperdrive pools the real connections to Postgres.
 */
export async function withDb<T>(env: Env, fn: (db: Db) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: env.HYPERDRIVE.connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // pg finds this socket through a CommonJS require of pg-cloudflare's "workerd" export, which the
    // Workers test runner resolves to the empty Node stub; naming it here works in every bundler.
    // Plain TCP: Hyperdrive terminates TLS to the database itself.
    stream: () => new CloudflareSocket(false) as unknown as Duplex,
  });
  // After end() the socket's read loop may still reject; without a listener that is an unhandled error.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    client.end().catch(() => {});
    throw new AppError("database_unavailable", "database unavailable", { cause: err });
  }
  try {
    return await fn(drizzle(client, { schema }));
  } finally {
    client.end().catch(() => {});
  }
}
