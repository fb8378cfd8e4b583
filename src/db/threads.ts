import { and, desc, eq, isNull, lt, or } from "drizzle-orm";
import type { Db } from "./client.ts";
import { threads, type Thread } from "./schema.ts";

/** A new thread; `id` when the caller chose it (a useChat client's chat id), else the database's. */
export async function createThread(db: Db, input: { id?: string; userId: string; title?: string | null }): Promise<Thread> {
  const [thread] = await db
    .insert(threads)
    .values({ id: input.id, userId: input.userId, title: input.title ?? null, titleSource: input.title ? "user" : null })
    .returning();
  return thread!;
}

export async function getThread(db: Db, id: string): Promise<Thread | undefined> {
  const [thread] = await db.select().from(threads).where(eq(threads.id, id));
  return thread;
}

export type ThreadCursor = { createdAt: Date; id: string };

/** A user's threads, newest first, `limit` at a time after `cursor` (keyset: stable while threads are added). */
export async function listThreads(db: Db, userId: string, opts: { limit: number; cursor?: ThreadCursor }) {
  const after = opts.cursor ? or(lt(threads.createdAt, opts.cursor.createdAt), and(eq(threads.createdAt, opts.cursor.createdAt), lt(threads.id, opts.cursor.id))) : undefined;
  const rows = await db
    .select()
    .from(threads)
    .where(and(eq(threads.userId, userId), after))
    .orderBy(desc(threads.createdAt), desc(threads.id))
    .limit(opts.limit + 1);
  const items = rows.slice(0, opts.limit);
  const last = items.at(-1);
  return { items, next: rows.length > opts.limit && last ? { createdAt: last.createdAt, id: last.id } : null };
}

export async function listThreadIds(db: Db, userId: string): Promise<string[]> {
  return (await db.select({ id: threads.id }).from(threads).where(eq(threads.userId, userId))).map((r) => r.id);
}

/** The owner's rename (or clearing): from now on no title written for them replaces it. */
export async function updateThreadTitle(db: Db, id: string, title: string | null): Promise<Thread | undefined> {
  const [thread] = await db.update(threads).set({ title, titleSource: "user" }).where(eq(threads.id, id)).returning();
  return thread;
}

/** A title written after the first exchange, only onto a thread its owner never titled; the thread when it took. */
export async function setAutoTitle(db: Db, id: string, title: string): Promise<Thread | undefined> {
  const [thread] = await db
    .update(threads)
    .set({ title, titleSource: "auto" })
    .where(and(eq(threads.id, id), isNull(threads.title), isNull(threads.titleSource)))
    .returning();
  return thread;
}

export async function deleteThread(db: Db, id: string): Promise<boolean> {
  const deleted = await db.delete(threads).where(eq(threads.id, id)).returning({ id: threads.id });
  return deleted.length > 0;
}
