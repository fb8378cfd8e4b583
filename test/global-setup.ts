import pg from "pg";
import type { TestProject } from "vitest/node";
import { applyMigrations, startPglite, withPassword, type LocalPostgres } from "../scripts/lib/postgres.ts";
import { startFakeOpenAI } from "./support/fake-openai.ts";
import { drizzle } from "drizzle-orm/node-postgres";
import { TEST_EMAIL_DOMAIN, usersInEmailDomain } from "../src/db/users.ts";
import { startTcpProxy } from "./support/tcp-proxy.ts";
import { startWsProxy } from "./support/ws-proxy.ts";
import { startMcpTestServer } from "./support/mcp-server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    faultDatabaseUrl: string;
    faultControlUrl: string;
    openaiUrl: string;
    neonWsProxy: string;
    mcpServerUrl: string;
  }
}

/**
 * Real services for the suite: Postgres (TEST_DATABASE_URL, else an embedded PGlite), migrated;
 * a TCP proxy in front of it that fault tests can cut; and the fake OpenAI-compatible server.
 */
export default async function setup(project: TestProject) {
  let local: LocalPostgres | undefined;
  const databaseUrl = withPassword(process.env.TEST_DATABASE_URL || (local = await startPglite()).url);
  await applyMigrations(databaseUrl);
  const db = new URL(databaseUrl);
  const proxy = await startTcpProxy({ host: db.hostname, port: Number(db.port || 5432) });
  const faultDb = new URL(databaseUrl);
  faultDb.hostname = "127.0.0.1";
  faultDb.port = String(proxy.port);
  const openai = await startFakeOpenAI();
  // The "neon" project reaches the same Postgres over Neon's driver, through a WebSocket-to-TCP proxy.
  const wsProxy = await startWsProxy({ host: db.hostname, port: Number(db.port || 5432) });
  project.provide("databaseUrl", databaseUrl);
  project.provide("faultDatabaseUrl", faultDb.toString());
  project.provide("faultControlUrl", proxy.controlUrl);
  project.provide("openaiUrl", openai.url);
  project.provide("neonWsProxy", `127.0.0.1:${wsProxy.port}`);
  // A real MCP server (the official SDK) for the MCP client tests.
  const mcp = await startMcpTestServer();
  project.provide("mcpServerUrl", mcp.url);
  return async () => {
    const leftovers = await countTestUsers(databaseUrl);
    await openai.stop();
    await proxy.stop();
    await wsProxy.stop();
    await mcp.stop();
    await local?.stop();
    // Every test removes what it made; rows left behind mean a test leaks data into the next run.
    if (leftovers > 0) throw new Error(`the suite left ${leftovers} test user(s) behind in Postgres`);
    // A neon project that never reached the proxy ran over some other transport, and proved nothing.
    if (project.vitest.projects.some((p) => p.name === "neon") && wsProxy.connections() === 0) throw new Error("the neon project never used Neon's driver");
  };
}

async function countTestUsers(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await usersInEmailDomain(drizzle(client), TEST_EMAIL_DOMAIN)).length;
  } finally {
    await client.end();
  }
}
