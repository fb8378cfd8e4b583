import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "./client";
import { messages, threads } from "./schema";

export type StoredMessage = {
  id: string;
  role: "user" | "assistant" | "system";
  parts: unknown[];
  metadata?: unknown;
};

/** One change to a thread's transcript, in the order the thread agent made it. */
export type MessageOp =
  | { op: "upsert"; message: StoredMessage }
  | { op: "delete"; ids: string[] }
  | { op: "clear" };

/**
 * Applies a thread's transcript changes in one transaction, in order. Upserts are idempotent by
 * (thread, message id): a replayed op rewrites the same row and keeps its sequence number.
 */
export async function applyMessageOps(db: Db, threadId: string, ops: MessageOp[]): Promise<void> {
  if (ops.length === 0) return;
  await db.transaction(async (tx) => {
    for (const change of ops) {
      if (change.op === "upsert") {
        const { id, role, parts, metadata } = change.message;
        const row = { role, parts, metadata: metadata ?? null, ...usageColumns(role, metadata) };
        await tx
          .insert(messages)
          .values({ threadId, id, ...row })
          .onConflictDoUpdate({ target: [messages.threadId, messages.id], set: row });
      } else if (change.op === "delete") {
        if (change.ids.length) await tx.delete(messages).where(and(eq(messages.threadId, threadId), inArray(messages.id, change.ids)));
      } else {
        await tx.delete(messages).where(eq(messages.threadId, threadId));
      }
    }
    await tx.update(threads).set({ updatedAt: sql`now()` }).where(eq(threads.id, threadId));
  });
}

export type MessagePage = {
  messages: (StoredMessage & { createdAt: Date })[];
  /** Pass back as `cursor` for the page of older messages; null on the oldest page. */
  nextCursor: string | null;
};

/** The newest `limit` messages before `cursor`, oldest first. */
export async function listMessages(db: Db, threadId: string, opts: { limit: number; cursor?: number }): Promise<MessagePage> {
  const where = opts.cursor === undefined ? eq(messages.threadId, threadId) : and(eq(messages.threadId, threadId), lt(messages.seq, opts.cursor));
  const rows = await db
    .select({ id: messages.id, role: messages.role, parts: messages.parts, metadata: messages.metadata, createdAt: messages.createdAt, seq: messages.seq })
    .from(messages)
    .where(where)
    .orderBy(desc(messages.seq))
    .limit(opts.limit + 1);
  const more = rows.length > opts.limit;
  const page = rows.slice(0, opts.limit).reverse();
  return {
    messages: page.map(({ seq: _seq, ...m }) => ({ ...m, role: m.role as StoredMessage["role"], parts: m.parts as unknown[], metadata: m.metadata ?? undefined })),
    nextCursor: more && page[0] ? String(page[0].seq) : null,
  };
}

/** The model and token counts an assistant message's metadata records, as columns for usage totals. */
function usageColumns(role: string, metadata: unknown) {
  const m = role === "assistant" ? (metadata as { model?: unknown; usage?: { inputTokens?: unknown; outputTokens?: unknown } } | undefined) : undefined;
  const int = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? Math.round(v) : null);
  return { model: typeof m?.model === "string" ? m.model : null, inputTokens: int(m?.usage?.inputTokens), outputTokens: int(m?.usage?.outputTokens) };
}
