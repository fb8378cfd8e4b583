// Applies migrations/ to DATABASE_URL: `DATABASE_URL=postgres://... npm run db:migrate`.
import { applyMigrations } from "./lib/postgres.ts";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("DATABASE_URL is not set");
  process.exit(1);
}
await applyMigrations(url);
console.log(`migrations applied to ${new URL(url).host}${new URL(url).pathname}`);
