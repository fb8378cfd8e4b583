import { eq } from "drizzle-orm";
import type { Db } from "./client";
import { users, type User } from "./schema";

export async function createUser(db: Db, input: { email: string; name?: string | null }): Promise<User> {
  const [user] = await db.insert(users).values({ email: input.email, name: input.name ?? null }).returning();
  return user!;
}

export async function getUser(db: Db, id: string): Promise<User | undefined> {
  const [user] = await db.select().from(users).where(eq(users.id, id));
  return user;
}

export async function deleteUser(db: Db, id: string): Promise<boolean> {
  const deleted = await db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
  return deleted.length > 0;
}
