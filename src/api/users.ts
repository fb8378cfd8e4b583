import { createRoute, z } from "@hono/zod-openapi";
import { wipeThreadAgents } from "../agent/client.ts";
import { idParam, requireAdmin } from "../auth/access.ts";
import { hashApiKey, newApiKey } from "../auth/keys.ts";
import { userAuthority } from "../authority/client.ts";
import { snapshotOf, type UserSnapshot } from "../authority/user-authority.ts";
import { resetsAt, type Period } from "../authority/budget.ts";
import { withDb } from "../db/client.ts";
import { usageTotals } from "../db/spend.ts";
import { listThreadIds } from "../db/threads.ts";
import { createUser, deleteUser, getUser, setBudgets } from "../db/users.ts";
import { AppError } from "../errors.ts";
import type { Context } from "hono";
import { apiRouter, type AppEnv, bearerAuth, errors, json, jsonBody } from "./http.ts";
import { UsageSchema } from "./schemas.ts";

export const UserSchema = z
  .object({
    id: z.uuid(),
    email: z.email(),
    name: z.string().nullable(),
    tokenBudget: z.number().int().nullable(),
    dailyTokenBudget: z.number().int().nullable(),
    monthlyTokenBudget: z.number().int().nullable(),
    createdAt: z.iso.datetime(),
  })
  .openapi("User");
// Budgets fit Postgres's bigint with room to spare; a cap in the quadrillions is no cap anyone needs.
const Budget = z.number().int().positive().max(1e15);
const BudgetsBody = {
  tokenBudget: Budget.nullable().optional().openapi({ description: "Tokens the user's turns may spend in all; null: no cap" }),
  dailyTokenBudget: Budget.nullable().optional().openapi({ description: "Tokens per UTC day; null: no cap" }),
  monthlyTokenBudget: Budget.nullable().optional().openapi({ description: "Tokens per UTC month; null: no cap" }),
};
const BudgetState = z.object({ limit: z.number().int().nullable(), used: z.number().int(), remaining: z.number().int().nullable(), resetsAt: z.iso.datetime().nullable() });

const CreateUserBody = z
  .strictObject({
    email: z.string().trim().toLowerCase().pipe(z.email().max(320)),
    name: z.string().trim().min(1).max(200).optional(),
    ...BudgetsBody,
  })
  .openapi("CreateUser");

export const userJson = (u: UserSnapshot): z.infer<typeof UserSchema> => ({
  id: u.id,
  email: u.email,
  name: u.name,
  tokenBudget: u.tokenBudget,
  dailyTokenBudget: u.dailyTokenBudget,
  monthlyTokenBudget: u.monthlyTokenBudget,
  createdAt: u.createdAt,
});

const me = (c: Context<AppEnv>) => {
  const p = c.get("principal");
  if (p.kind !== "user") throw new AppError("forbidden", "the admin is not a user; act on users through their ids");
  return p.user;
};

export const users = apiRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      summary: "Create a user (admin). The API key is returned once.",
      security: bearerAuth,
      request: jsonBody(CreateUserBody),
      responses: { 201: json(z.object({ user: UserSchema, apiKey: z.string() }), "Created"), ...errors(400, 401, 403, 409, 413, 422) },
    }),
    async (c) => {
      requireAdmin(c.env, c.get("principal"));
      const body = c.req.valid("json");
      // The id is chosen here because the key carries it (see newApiKey).
      const id = crypto.randomUUID();
      const apiKey = newApiKey(id);
      const user = await withDb(c.env, async (db) => createUser(db, { ...body, id, apiKeyHash: await hashApiKey(apiKey) }));
      return c.json({ user: userJson(snapshotOf(user)), apiKey }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/me",
      summary: "The calling user",
      security: bearerAuth,
      responses: { 200: json(z.object({ user: UserSchema }), "The user"), ...errors(401, 403) },
    }),
    (c) => c.json({ user: userJson(me(c)) }, 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/me/usage",
      summary: "The calling user's spend, from the ledger (deleted threads and messages still count), and each budget with what is left",
      security: bearerAuth,
      responses: {
        200: json(
          z.object({
            usage: UsageSchema,
            tokenBudget: z.number().int().nullable(),
            remaining: z.number().int().nullable().openapi({ description: "What is left of the lifetime budget" }),
            budgets: z.object({ lifetime: BudgetState, daily: BudgetState, monthly: BudgetState }),
          }),
          "Usage",
        ),
        ...errors(401, 403, 503),
      },
    }),
    async (c) => {
      const user = me(c);
      const authority = userAuthority(c.env, user.id);
      // The authority writes the ledger in the background: this read sees every call made so far.
      await authority.flushLedger();
      const [usage, state] = await Promise.all([withDb(c.env, (db) => usageTotals(db, { userId: user.id })), authority.budgets()]);
      if (!("budgets" in state)) throw AppError.fromRefusal(state);
      const now = new Date();
      const used: Record<Period, number> = { lifetime: state.spent.lifetime, daily: state.spent.day.tokens, monthly: state.spent.month.tokens };
      const budget = (p: Period) => ({ limit: state.budgets[p], used: used[p], remaining: state.remaining[p], resetsAt: resetsAt(p, now)?.toISOString() ?? null });
      return c.json(
        {
          usage,
          tokenBudget: user.tokenBudget,
          remaining: state.remaining.lifetime,
          budgets: { lifetime: budget("lifetime"), daily: budget("daily"), monthly: budget("monthly") },
        },
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/me/api-key",
      summary: "Rotate the calling user's API key; the old key stops working at once",
      security: bearerAuth,
      responses: { 200: json(z.object({ apiKey: z.string() }), "The new key, shown once"), ...errors(401, 403) },
    }),
    async (c) => {
      const user = me(c);
      const apiKey = newApiKey(user.id);
      // Through the user's authority: it writes Postgres, then stops the old key and closes its sockets.
      const r = await userAuthority(c.env, user.id).rotateKey(await hashApiKey(apiKey));
      if (!r.ok) throw new AppError(r.code, r.message);
      return c.json({ apiKey }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/{id}",
      summary: "Set a user's token budgets (admin): in all, per UTC day, per UTC month; null removes one. In force for their next turn.",
      security: bearerAuth,
      request: { params: z.object({ id: z.string() }), ...jsonBody(z.strictObject(BudgetsBody).openapi("UpdateUser")) },
      responses: { 200: json(z.object({ user: UserSchema }), "The user"), ...errors(400, 401, 403, 404, 413, 422, 503) },
    }),
    async (c) => {
      requireAdmin(c.env, c.get("principal"));
      const id = idParam(c.req.valid("param").id, () => new AppError("user_not_found", "user not found"));
      const user = await withDb(c.env, (db) => setBudgets(db, id, c.req.valid("json")));
      if (!user) throw new AppError("user_not_found", "user not found");
      await userAuthority(c.env, id).updateUser(snapshotOf(user));
      return c.json({ user: userJson(snapshotOf(user)) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      summary: "Delete a user (admin), their threads, messages and the threads' agent storage",
      security: bearerAuth,
      request: { params: z.object({ id: z.string() }) },
      responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) },
    }),
    async (c) => {
      requireAdmin(c.env, c.get("principal"));
      const notFound = () => new AppError("user_not_found", "user not found");
      const id = idParam(c.req.valid("param").id, notFound);
      const authority = userAuthority(c.env, id);
      const threadIds = await withDb(c.env, async (db) => {
        if (!(await getUser(db, id))) throw notFound();
        const ids = await listThreadIds(db, id);
        // Revoked at the authority first: should the delete below fail, the user stays locked out.
        await authority.deleteUser();
        await deleteUser(db, id);
        return ids;
      });
      await wipeThreadAgents(c.env, threadIds);
      await authority.forget();
      return c.body(null, 204);
    },
  );
