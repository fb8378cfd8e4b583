// `npm run db:check`: the migrations agree with each other (drizzle-kit check) and with src/db/schema.ts
// (generating from the schema, into a scratch copy of migrations/, yields no new migration). Offline.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { MIGRATIONS_DIR } from "./lib/postgres.ts";

const schema = process.argv[2] ?? "./src/db/schema.ts";
const DRIZZLE_KIT = new URL("../node_modules/.bin/drizzle-kit", import.meta.url).pathname;

function drizzleKit(args: string[]): string {
  // stdin closed: a schema change drizzle-kit cannot decide alone (a rename?) must fail, not wait for an answer.
  const run = spawnSync(DRIZZLE_KIT, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
  const output = `${run.stdout}${run.stderr}`;
  if (run.status !== 0) {
    console.error(output);
    throw new Error(`drizzle-kit ${args[0]} failed (${run.error?.message ?? `exit ${run.status}`})`);
  }
  return output;
}

drizzleKit(["check"]);
const scratch = mkdtempSync(join(tmpdir(), "tl-drift-"));
try {
  cpSync(MIGRATIONS_DIR, scratch, { recursive: true });
  const before = new Set(readdirSync(scratch));
  // drizzle-kit prefixes --out with "./", so it must be relative.
  drizzleKit(["generate", "--dialect", "postgresql", "--schema", schema, "--out", relative(process.cwd(), scratch)]);
  const added = readdirSync(scratch).filter((f) => !before.has(f));
  if (added.length) {
    console.error(`${schema} differs from migrations/: generating from it would add ${added.join(", ")}. Run \`npm run db:generate\` and commit the migration.`);
    process.exit(1);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log("migrations: consistent, and in step with the schema");
