import { sql } from "drizzle-orm";
import { bigint, check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const users = pgTable("users", {
  id: uuid("id").primaryKey().defaultRandom(),
  email: text("email").notNull().unique(),
  name: text("name"),
  // SHA-256 of the user's API key; the key itself is shown once and never stored.
  apiKeyHash: text("api_key_hash").unique(),
  // Optional cap on the tokens the user's turns may spend; null means no cap.
  tokenBudget: bigint("token_budget", { mode: "number" }),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

export const threads = pgTable(
  "threads",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    title: text("title"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("threads_user_updated_idx").on(t.userId, t.updatedAt)],
);

// Message ids come from clients (UIMessage ids), so they are unique per thread, not globally:
// a client reusing another thread's id must not overwrite that thread's row.
export const messages = pgTable(
  "messages",
  {
    threadId: uuid("thread_id").notNull().references(() => threads.id, { onDelete: "cascade" }),
    id: text("id").notNull(),
    role: text("role").notNull(),
    parts: jsonb("parts").notNull(),
    metadata: jsonb("metadata"),
    // Copied from an assistant message's metadata so usage totals are a plain SUM.
    model: text("model"),
    inputTokens: integer("input_tokens"),
    outputTokens: integer("output_tokens"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    // Ordering key: assigned on first insert, kept by upserts. Timestamps tie and skew.
    seq: bigint("seq", { mode: "number" }).notNull().generatedAlwaysAsIdentity(),
  },
  (t) => [
    primaryKey({ columns: [t.threadId, t.id] }),
    index("messages_thread_seq_idx").on(t.threadId, t.seq),
    check("messages_role_check", sql`${t.role} in ('user', 'assistant', 'system')`),
  ],
);

export type User = typeof users.$inferSelect;
export type Thread = typeof threads.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
