import { eq } from "drizzle-orm";
import type { Db } from "./client";
import { threads, type Thread } from "./schema";

export async function createThread(db: Db, input: { userId: string; title?: string | null }): Promise<Thread> {
  const [thread] = await db.insert(threads).values({ userId: input.userId, title: input.title ?? null }).returning();
  return thread!;
}

export async function getThread(db: Db, id: string): Promise<Thread | undefined> {
  const [thread] = await db.select().from(threads).where(eq(threads.id, id));
  return thread;
}

export async function deleteThread(db: Db, id: string): Promise<boolean> {
  const deleted = await db.delete(threads).where(eq(threads.id, id)).returning({ id: threads.id });
  return deleted.length > 0;
}
