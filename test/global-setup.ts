import type { TestProject } from "vitest/node";
import { applyMigrations, startPglite, type LocalPostgres } from "../scripts/lib/postgres.ts";
import { startFakeOpenAI } from "./support/fake-openai.ts";
import { startTcpProxy } from "./support/tcp-proxy.ts";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    faultDatabaseUrl: string;
    faultControlUrl: string;
    openaiUrl: string;
  }
}

/**
 * Real services for the suite: Postgres (TEST_DATABASE_URL, else an embedded PGlite), migrated;
 * a TCP proxy in front of it that fault tests can cut; and the fake OpenAI-compatible server.
 */
export default async function setup(project: TestProject) {
  let local: LocalPostgres | undefined;
  const databaseUrl = process.env.TEST_DATABASE_URL || (local = await startPglite()).url;
  await applyMigrations(databaseUrl);
  const db = new URL(databaseUrl);
  const proxy = await startTcpProxy({ host: db.hostname, port: Number(db.port || 5432) });
  const faultDb = new URL(databaseUrl);
  faultDb.hostname = "127.0.0.1";
  faultDb.port = String(proxy.port);
  const openai = await startFakeOpenAI();
  project.provide("databaseUrl", databaseUrl);
  project.provide("faultDatabaseUrl", faultDb.toString());
  project.provide("faultControlUrl", proxy.controlUrl);
  project.provide("openaiUrl", openai.url);
  return async () => {
    await openai.stop();
    await proxy.stop();
    await local?.stop();
  };
}
