// The Worker that bench/transport.ts runs in workerd: a typical turn's database work through the
// app's own withDb and query modules, over Hyperdrive+pg or Neon's driver, timed inside workerd.
import { sql } from "drizzle-orm";
import { withDb, type Db } from "../src/db/client.ts";
import { applyMessageOps } from "../src/db/messages.ts";
import { spendSince } from "../src/db/spend.ts";
import { createThread, getThread } from "../src/db/threads.ts";
import { createUser, deleteUser, getUserByKeyHash } from "../src/db/users.ts";

type Workload = "connect" | "turn" | "turn-one-connection";
type Fixture = { userId: string; threadId: string; keyHash: string };

let neonEnv: Env | undefined;
let seq = 0;

/** The turn's statements, as the HTTP route, the turn gate and the outbox issue them. */
const steps = (f: Fixture): ((db: Db) => Promise<unknown>)[] => {
  const message = (role: "user" | "assistant") => ({ id: `bench-${++seq}`, role, parts: [{ type: "text", text: "hello" }] });
  return [
    (db: Db) => getUserByKeyHash(db, f.keyHash), // bearer token → principal
    (db: Db) => getThread(db, f.threadId), // the thread is yours
    (db: Db) => spendSince(db, f.userId, { day: new Date(), month: new Date() }), // the user's authority, when it first loads
    (db: Db) => applyMessageOps(db, f.threadId, [{ op: "upsert", message: message("user") }]), // outbox: user message
    (db: Db) => applyMessageOps(db, f.threadId, [{ op: "upsert", message: message("assistant") }]), // outbox: reply
  ];
};

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    // The same deployment without its HYPERDRIVE binding: withDb then takes DATABASE_URL over Neon's driver.
    const target = url.searchParams.get("transport") === "neon" ? (neonEnv ??= { ...env, HYPERDRIVE: undefined }) : env;
    if (url.pathname === "/setup") {
      const keyHash = `bench-${crypto.randomUUID()}`;
      const user = await withDb(env, (db) => createUser(db, { email: `${keyHash}@bench.threadline.invalid`, apiKeyHash: keyHash }));
      const thread = await withDb(env, (db) => createThread(db, { userId: user.id, title: "bench" }));
      return Response.json({ userId: user.id, threadId: thread.id, keyHash } satisfies Fixture);
    }
    if (url.pathname === "/teardown") {
      await withDb(env, (db) => deleteUser(db, url.searchParams.get("userId")!));
      return new Response(null, { status: 204 });
    }
    const fixture = JSON.parse(url.searchParams.get("fixture")!) as Fixture;
    const workload = url.pathname.slice(1) as Workload;
    const n = Number(url.searchParams.get("n") ?? 20);
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      if (workload === "connect") await withDb(target, (db) => db.execute(sql`select 1`));
      else if (workload === "turn") for (const step of steps(fixture)) await withDb<unknown>(target, step);
      else
        await withDb(target, async (db) => {
          for (const step of steps(fixture)) await step(db);
        });
      ms.push(performance.now() - t0);
    }
    return Response.json(ms);
  },
};
