import { and, asc, count, eq, isNull, or } from "drizzle-orm";
import { AppError } from "../errors.ts";
import type { Db } from "./client.ts";
import { mcpServers, users, type McpServerRow } from "./schema.ts";

export type NewMcpServer = { id: string; userId: string; threadId: string | null; name: string; url: string; tokenCiphertext: string | null };

/** Adds a server unless the user has `max` already: counted with the user's row locked, so parallel registrations count one after the other. */
export async function createMcpServer(db: Db, row: NewMcpServer, max: number): Promise<McpServerRow> {
  return db.transaction(async (tx) => {
    await tx.select({ id: users.id }).from(users).where(eq(users.id, row.userId)).for("no key update");
    const [held] = await tx.select({ n: count() }).from(mcpServers).where(eq(mcpServers.userId, row.userId));
    if ((held?.n ?? 0) >= max) throw new AppError("quota_exceeded", `at most ${max} MCP servers per user`);
    const [created] = await tx.insert(mcpServers).values(row).returning();
    return created!;
  });
}

export async function getMcpServer(db: Db, id: string): Promise<McpServerRow | undefined> {
  const [row] = await db.select().from(mcpServers).where(eq(mcpServers.id, id));
  return row;
}

/** A user's servers, oldest first. */
export async function listMcpServers(db: Db, userId: string): Promise<McpServerRow[]> {
  return db.select().from(mcpServers).where(eq(mcpServers.userId, userId)).orderBy(asc(mcpServers.createdAt), asc(mcpServers.id));
}

/** The servers a thread's turns use: its owner's for all their threads, and those registered for this thread. */
export async function mcpServersForThread(db: Db, userId: string, threadId: string): Promise<McpServerRow[]> {
  return db
    .select()
    .from(mcpServers)
    .where(and(eq(mcpServers.userId, userId), or(isNull(mcpServers.threadId), eq(mcpServers.threadId, threadId))))
    .orderBy(asc(mcpServers.createdAt), asc(mcpServers.id));
}

export async function deleteMcpServer(db: Db, id: string): Promise<boolean> {
  return (await db.delete(mcpServers).where(eq(mcpServers.id, id)).returning({ id: mcpServers.id })).length > 0;
}
