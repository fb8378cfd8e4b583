// `npm run db:cleanup-test-data [-- --dry-run]`: removes data the tests made (users whose email is in
// the test domain, with their threads and messages) from DATABASE_URL. Nothing else is touched.
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { deleteUsersInEmailDomain, TEST_EMAIL_DOMAIN, usersInEmailDomain } from "../src/db/users.ts";

const url = process.env.DATABASE_URL;
const dryRun = process.argv.includes("--dry-run");
if (!url) {
  console.error("DATABASE_URL is not set");
  process.exit(2);
}
const client = new pg.Client({ connectionString: url });
client.on("error", () => {});
await client.connect();
try {
  const db = drizzle(client);
  const found = await usersInEmailDomain(db, TEST_EMAIL_DOMAIN);
  for (const u of found)
    console.log(`${dryRun ? "would delete" : "deleting"} ${u.email} (${u.id}): ${u.threads} thread(s), ${u.messages} message(s), created ${u.createdAt.toISOString()}`);
  if (!dryRun) console.log(`deleted ${await deleteUsersInEmailDomain(db, TEST_EMAIL_DOMAIN)} test user(s) and their threads and messages`);
  else console.log(`${found.length} test user(s) would be deleted; nothing was changed`);
} finally {
  await client.end();
}
