import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { servePglite } from "./pglite-wire.ts";

export const MIGRATIONS_DIR = new URL("../../migrations", import.meta.url).pathname;

/** Applies every pending migration in `migrationsFolder` (default migrations/) to the database at `url`. */
export async function applyMigrations(url: string, migrationsFolder = MIGRATIONS_DIR): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    await migrate(drizzle(client), { migrationsFolder });
  } finally {
    await client.end();
  }
}

/**
 * Miniflare's Hyperdrive refuses a connection string without a password. A server that does not ask
 * for one (trust or peer auth) ignores it, so a placeholder is harmless there.
 */
export function withPassword(url: string): string {
  const u = new URL(url);
  if (!u.password) u.password = "unused";
  if (!u.username) u.username = "postgres";
  return u.toString();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export type LocalPostgres = { url: string; stop: () => Promise<void> };

/**
 * Embedded Postgres (PGlite with pgvector) on the wire protocol. `dataDir` keeps the data between
 * runs; without it the database lives in memory. Clients take turns on PGlite's one session.
 */
export async function startPglite(opts: { dataDir?: string; port?: number } = {}): Promise<LocalPostgres> {
  const [{ PGlite }, { vector }] = await Promise.all([import("@electric-sql/pglite"), import("@electric-sql/pglite-pgvector")]);
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir: opts.dataDir, extensions: { vector } });
  const port = opts.port ?? (await freePort());
  const server = await servePglite(db, port);
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.close();
      await db.close();
    },
  };
}
