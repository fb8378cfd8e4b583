import { Hono } from "hono";
import { z } from "zod";
import { withDb } from "../db/client";
import type { User } from "../db/schema";
import { createUser } from "../db/users";
import { jsonBody, type AppEnv } from "./http";

export const createUserBody = z.strictObject({
  email: z.string().trim().toLowerCase().pipe(z.email().max(320)),
  name: z.string().trim().min(1).max(200).optional(),
});

export const userJson = (u: User) => ({ id: u.id, email: u.email, name: u.name, createdAt: u.createdAt.toISOString() });

export const users = new Hono<AppEnv>().post("/", async (c) => {
  const body = await jsonBody(c, createUserBody);
  const user = await withDb(c.env, (db) => createUser(db, body));
  return c.json({ user: userJson(user) }, 201);
});
