import { Hono } from "hono";
import { z } from "zod";
import { withDb } from "../db/client";
import { listMessages } from "../db/messages";
import type { Thread } from "../db/schema";
import { createThread, getThread } from "../db/threads";
import { AppError } from "../errors";
import { idParam, jsonBody, queryParams, uuidParam, type AppEnv } from "./http";

export const MAX_TITLE_LENGTH = 200;

const createThreadBody = z.strictObject({
  userId: uuidParam,
  title: z.string().trim().min(1).max(MAX_TITLE_LENGTH).optional(),
});

const messagesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.coerce.number().int().positive().optional(),
});

const threadNotFound = () => new AppError("thread_not_found", "thread not found");

export const threadJson = (t: Thread) => ({
  id: t.id,
  userId: t.userId,
  title: t.title,
  createdAt: t.createdAt.toISOString(),
  updatedAt: t.updatedAt.toISOString(),
});

export const threads = new Hono<AppEnv>()
  .post("/", async (c) => {
    const body = await jsonBody(c, createThreadBody);
    const thread = await withDb(c.env, (db) => createThread(db, body));
    return c.json({ thread: threadJson(thread) }, 201);
  })
  .get("/:id/messages", async (c) => {
    const id = idParam(c, "id", threadNotFound());
    const { limit, cursor } = queryParams(c, messagesQuery);
    const page = await withDb(c.env, async (db) => {
      if (!(await getThread(db, id))) throw threadNotFound();
      return listMessages(db, id, { limit, cursor });
    });
    return c.json({ messages: page.messages.map((m) => ({ ...m, createdAt: m.createdAt.toISOString() })), nextCursor: page.nextCursor });
  });
