import { eq } from "drizzle-orm";
import type { Db } from "./client";
import { users, type User } from "./schema";

export async function createUser(db: Db, input: { email: string; name?: string | null; apiKeyHash: string; tokenBudget?: number | null }): Promise<User> {
  const [user] = await db
    .insert(users)
    .values({ email: input.email, name: input.name ?? null, apiKeyHash: input.apiKeyHash, tokenBudget: input.tokenBudget ?? null })
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

export async function deleteUser(db: Db, id: string): Promise<boolean> {
  const deleted = await db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
  return deleted.length > 0;
}
