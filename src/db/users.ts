import { eq, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { users, type User } from "./schema.ts";

export type BudgetColumns = { tokenBudget?: number | null; dailyTokenBudget?: number | null; monthlyTokenBudget?: number | null };

export async function createUser(db: Db, input: { id?: string; email: string; name?: string | null; apiKeyHash: string } & BudgetColumns): Promise<User> {
  const [user] = await db
    .insert(users)
    .values({
      ...(input.id && { id: input.id }),
      email: input.email,
      name: input.name ?? null,
      apiKeyHash: input.apiKeyHash,
      tokenBudget: input.tokenBudget ?? null,
      dailyTokenBudget: input.dailyTokenBudget ?? null,
      monthlyTokenBudget: input.monthlyTokenBudget ?? null,
    })
    .returning();
  return user!;
}

export async function getUser(db: Db, id: string): Promise<User | undefined> {
  const [user] = await db.select().from(users).where(eq(users.id, id));
  return user;
}

export async function getUserByKeyHash(db: Db, apiKeyHash: string): Promise<User | undefined> {
  const [user] = await db.select().from(users).where(eq(users.apiKeyHash, apiKeyHash));
  return user;
}

export async function setApiKeyHash(db: Db, id: string, apiKeyHash: string): Promise<void> {
  await db.update(users).set({ apiKeyHash }).where(eq(users.id, id));
}

/** Sets the budgets named (undefined leaves one as it is); the user as stored, or undefined when there is none. */
export async function setBudgets(db: Db, id: string, budgets: BudgetColumns): Promise<User | undefined> {
  const set = Object.fromEntries(Object.entries(budgets).filter(([, v]) => v !== undefined));
  const [user] = Object.keys(set).length ? await db.update(users).set(set).where(eq(users.id, id)).returning() : await db.select().from(users).where(eq(users.id, id));
  return user;
}

export async function deleteUser(db: Db, id: string): Promise<boolean> {
  const deleted = await db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
  return deleted.length > 0;
}

/**
 * Users created by tests carry this email domain (or a subdomain of it), so test data can be told
 * apart from real data and removed from any database without touching anything else.
 */
export const TEST_EMAIL_DOMAIN = "tests.threadline.invalid";

const inDomain = (domain: string) => {
  const host = sql`lower(split_part(${users.email}, '@', 2))`;
  return sql`(${host} = ${domain} or right(${host}, ${domain.length + 1}) = ${"." + domain})`;
};

export async function usersInEmailDomain(db: Db, domain: string) {
  return db
    .select({
      id: users.id,
      email: users.email,
      createdAt: users.createdAt,
      // Spelled out: drizzle renders a column in a select list unqualified, and "id" is ambiguous here.
      threads: sql<number>`(select count(*)::int from threads t where t.user_id = users.id)`,
      messages: sql<number>`(select count(*)::int from messages m join threads t on t.id = m.thread_id where t.user_id = users.id)`,
    })
    .from(users)
    .where(inDomain(domain))
    .orderBy(users.createdAt);
}

/** Deletes the users of an email domain; their threads and messages cascade. Returns how many. */
export async function deleteUsersInEmailDomain(db: Db, domain: string): Promise<number> {
  return (await db.delete(users).where(inDomain(domain)).returning({ id: users.id })).length;
}
