import { createRoute, z } from "@hono/zod-openapi";
import { threadAgent } from "../agent/client.ts";
import type { Context, MiddlewareHandler } from "hono";
import { idParam, requireAdmin } from "../auth/access.ts";
import { getConfig } from "../config.ts";
import { withDb, type Db } from "../db/client.ts";
import { clearOverride, overridesAt, setOverride, type FlagScope } from "../db/flags.ts";
import { getThread } from "../db/threads.ts";
import { statsSince } from "../db/stats.ts";
import { getUser } from "../db/users.ts";
import { AppError, validationError } from "../errors.ts";
import { outboxMonitor } from "../observability/outbox-monitor.ts";
import { FLAG_DEFINITIONS, FLAG_NAMES, invalidateFlags, isFlagName, parseFlagValue, resolvedFlagsIn, type FlagName } from "../flags/index.ts";
import { apiRouter, type AppEnv, bearerAuth, errors, json, jsonBody } from "./http.ts";

/** Every route here is the admin's; new admin routes only need adding to the chain below. */
const adminOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
  requireAdmin(c.env, c.get("principal"));
  await next();
};

const FlagValue = z.union([z.boolean(), z.number(), z.string()]).openapi("FlagValue");
const FlagParam = z.string().openapi({ param: { name: "flag", in: "path" }, description: `One of: ${FLAG_NAMES.join(", ")}` });
const UserIdParam = z.string().openapi({ param: { name: "userId", in: "path" }, format: "uuid" });
const ThreadIdParam = z.string().openapi({ param: { name: "threadId", in: "path" }, format: "uuid" });
const SetFlagBody = z.strictObject({ value: FlagValue }).openapi("SetFlag");

const FlagDefinition = z
  .object({ name: z.string(), description: z.string(), default: FlagValue, global: FlagValue.nullable().openapi({ description: "The global override, if any" }) })
  .openapi("FlagDefinition");
const FlagSet = z.object({ flag: z.string(), value: FlagValue, scope: z.enum(["global", "user", "thread"]) }).openapi("FlagSet");
const ScopeFlags = z
  .object({
    overrides: z.record(z.string(), z.unknown()).openapi({ description: "The overrides set at this scope, as stored" }),
    resolved: z.record(z.string(), z.object({ value: FlagValue, source: z.enum(["default", "global", "user", "thread"]) })).openapi({
      description: "What a turn here gets now (thread over user over global over default), read past the cache",
    }),
  })
  .openapi("ScopeFlags");

function flagName(name: string): FlagName {
  if (!isFlagName(name)) throw new AppError("flag_not_found", `no flag ${name}; flags: ${FLAG_NAMES.join(", ")}`);
  return name;
}

function flagValue(name: FlagName, value: unknown) {
  const parsed = parseFlagValue(name, value);
  if (!parsed.success) throw validationError(parsed.error, `value for ${name}`);
  return parsed.data;
}

const asUuid = (id: string, error: AppError) => idParam(id, () => error);
const userNotFound = () => new AppError("user_not_found", "user not found");
const threadNotFound = () => new AppError("thread_not_found", "thread not found");

const overridesJson = (rows: { flag: string; value: unknown }[]) => Object.fromEntries(rows.map((r) => [r.flag, r.value]));

async function setFlag(c: Context<AppEnv>, scope: FlagScope, name: string, body: unknown) {
  const flag = flagName(name);
  const value = flagValue(flag, body);
  await withDb(c.env, (db) => setOverride(db, scope, flag, value));
  invalidateFlags();
  return { flag, value, scope: scope.kind };
}

async function clearFlag(c: Context<AppEnv>, scope: FlagScope, name: string) {
  const flag = flagName(name);
  if (!(await withDb(c.env, (db) => clearOverride(db, scope, flag)))) throw new AppError("not_found", `no ${scope.kind} override of ${flag}`);
  invalidateFlags();
}

async function scopeFlags(db: Db, env: Env, scope: FlagScope, target: { userId: string; threadId?: string }) {
  const [rows, resolved] = await Promise.all([overridesAt(db, scope), resolvedFlagsIn(db, getConfig(env), target)]);
  return { overrides: overridesJson(rows), resolved };
}

const Count = z.number().int();

async function resolveQuarantined(c: Context<AppEnv>, action: "retry" | "drop") {
  const { threadId, seq } = c.req.param() as { threadId: string; seq: string };
  const id = asUuid(threadId, threadNotFound());
  const notFound = () => new AppError("not_found", `no quarantined change ${seq} on thread ${id}`);
  if (!/^\d{1,15}$/.test(seq)) throw notFound();
  const agent = await threadAgent(c.env, id);
  if (!(await agent.resolveQuarantined(Number(seq), action))) throw notFound();
  const { outbox } = await agent.status();
  return c.json({ status: { backlog: outbox.backlog, quarantined: outbox.quarantined } }, 200);
}
export const OutboxSummary = z
  .object({ threads: Count, messages: Count, oldestAt: z.number().nullable(), quarantined: z.object({ threads: Count, rows: Count }), failing: Count })
  .openapi("OutboxSummary");
const QuarantinedRow = z
  .object({ seq: Count, op: z.record(z.string(), z.unknown()), error: z.string(), createdAt: z.number(), quarantinedAt: z.number() })
  .openapi("QuarantinedChange");
const SeqParam = z.string().openapi({ param: { name: "seq", in: "path" } });

const StatsSchema = z
  .object({
    window: z.object({ hours: Count, since: z.iso.datetime() }),
    users: z.object({ total: Count, created: Count, active: Count }),
    threads: z.object({ total: Count, created: Count, active: Count }),
    messages: z.object({ user: Count, assistant: Count }),
    tokens: z.object({ input: z.number(), output: z.number() }),
    models: z.array(z.object({ model: z.string(), turns: Count, inputTokens: z.number(), outputTokens: z.number() })),
    tools: z.array(z.object({ name: z.string(), calls: Count, errors: Count })),
    search: z.object({ calls: Count, cached: Count, cacheHitRatio: z.number().nullable() }),
    documents: z.object({ total: Count, chunks: Count }),
    approvals: z
      .object({ requested: Count, approved: Count, denied: Count })
      .openapi({ description: "Tool calls held for the owner's approval in the window, and their decisions" }),
    outbox: OutboxSummary.nullable().openapi({ description: "Messages agents hold for Postgres, and those it refused (quarantined); null when the monitor cannot be reached" }),
  })
  .openapi("Stats");

const adminRouter = apiRouter();
adminRouter.use("*", adminOnly);

export const admin = adminRouter
  .openapi(
    createRoute({
      method: "get",
      path: "/flags",
      summary: "Feature flags (admin): each flag's description, default (from configuration) and global override",
      security: bearerAuth,
      responses: { 200: json(z.object({ flags: z.array(FlagDefinition) }), "The flags"), ...errors(401, 403, 503) },
    }),
    async (c) => {
      const config = getConfig(c.env);
      const global = overridesJson(await withDb(c.env, (db) => overridesAt(db, { kind: "global" })));
      const flags = FLAG_NAMES.map((name) => ({
        name,
        description: FLAG_DEFINITIONS[name].description,
        default: FLAG_DEFINITIONS[name].default(config),
        global: parseFlagValue(name, global[name]).data ?? null,
      }));
      return c.json({ flags }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/flags/{flag}",
      summary: "Set a flag's global override (admin); takes effect everywhere within FLAG_CACHE_SECONDS",
      security: bearerAuth,
      request: { params: z.object({ flag: FlagParam }), ...jsonBody(SetFlagBody) },
      responses: { 200: json(FlagSet, "Set"), ...errors(400, 401, 403, 404, 413, 422, 503) },
    }),
    async (c) => c.json(await setFlag(c, { kind: "global" }, c.req.valid("param").flag, c.req.valid("json").value), 200),
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/flags/{flag}",
      summary: "Clear a flag's global override (admin)",
      security: bearerAuth,
      request: { params: z.object({ flag: FlagParam }) },
      responses: { 204: { description: "Cleared" }, ...errors(401, 403, 404, 503) },
    }),
    async (c) => {
      await clearFlag(c, { kind: "global" }, c.req.valid("param").flag);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/users/{userId}/flags",
      summary: "A user's flag overrides, and the flags their turns get (admin)",
      security: bearerAuth,
      request: { params: z.object({ userId: UserIdParam }) },
      responses: { 200: json(ScopeFlags, "The user's flags"), ...errors(401, 403, 404, 503) },
    }),
    async (c) => {
      const userId = asUuid(c.req.valid("param").userId, userNotFound());
      const view = await withDb(c.env, async (db) => {
        if (!(await getUser(db, userId))) throw userNotFound();
        return scopeFlags(db, c.env, { kind: "user", userId }, { userId });
      });
      return c.json(view, 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/users/{userId}/flags/{flag}",
      summary: "Override a flag for one user (admin)",
      security: bearerAuth,
      request: { params: z.object({ userId: UserIdParam, flag: FlagParam }), ...jsonBody(SetFlagBody) },
      responses: { 200: json(FlagSet, "Set"), ...errors(400, 401, 403, 404, 413, 422, 503) },
    }),
    async (c) => {
      const { userId, flag } = c.req.valid("param");
      return c.json(await setFlag(c, { kind: "user", userId: asUuid(userId, userNotFound()) }, flag, c.req.valid("json").value), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/users/{userId}/flags/{flag}",
      summary: "Clear a user's override of a flag (admin)",
      security: bearerAuth,
      request: { params: z.object({ userId: UserIdParam, flag: FlagParam }) },
      responses: { 204: { description: "Cleared" }, ...errors(401, 403, 404, 503) },
    }),
    async (c) => {
      const { userId, flag } = c.req.valid("param");
      await clearFlag(c, { kind: "user", userId: asUuid(userId, userNotFound()) }, flag);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/threads/{threadId}/flags",
      summary: "A thread's flag overrides, and the flags its turns get (admin)",
      security: bearerAuth,
      request: { params: z.object({ threadId: ThreadIdParam }) },
      responses: { 200: json(ScopeFlags, "The thread's flags"), ...errors(401, 403, 404, 503) },
    }),
    async (c) => {
      const threadId = asUuid(c.req.valid("param").threadId, threadNotFound());
      const view = await withDb(c.env, async (db) => {
        const thread = await getThread(db, threadId);
        if (!thread) throw threadNotFound();
        return scopeFlags(db, c.env, { kind: "thread", threadId }, { userId: thread.userId, threadId });
      });
      return c.json(view, 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/threads/{threadId}/flags/{flag}",
      summary: "Override a flag for one thread (admin)",
      security: bearerAuth,
      request: { params: z.object({ threadId: ThreadIdParam, flag: FlagParam }), ...jsonBody(SetFlagBody) },
      responses: { 200: json(FlagSet, "Set"), ...errors(400, 401, 403, 404, 413, 422, 503) },
    }),
    async (c) => {
      const { threadId, flag } = c.req.valid("param");
      return c.json(await setFlag(c, { kind: "thread", threadId: asUuid(threadId, threadNotFound()) }, flag, c.req.valid("json").value), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/threads/{threadId}/flags/{flag}",
      summary: "Clear a thread's override of a flag (admin)",
      security: bearerAuth,
      request: { params: z.object({ threadId: ThreadIdParam, flag: FlagParam }) },
      responses: { 204: { description: "Cleared" }, ...errors(401, 403, 404, 503) },
    }),
    async (c) => {
      const { threadId, flag } = c.req.valid("param");
      await clearFlag(c, { kind: "thread", threadId: asUuid(threadId, threadNotFound()) }, flag);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/quarantine",
      summary: "Threads with changes Postgres refused for good, and those changes (admin)",
      security: bearerAuth,
      responses: { 200: json(z.object({ threads: z.array(z.object({ threadId: z.uuid(), changes: z.array(QuarantinedRow) })) }), "Quarantined changes"), ...errors(401, 403, 503) },
    }),
    async (c) => {
      const ids = await outboxMonitor(c.env).quarantinedThreads();
      const threads = await Promise.all(ids.map(async (threadId) => ({ threadId, changes: await (await threadAgent(c.env, threadId)).quarantined() })));
      return c.json({ threads }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/threads/{threadId}/quarantine",
      summary: "A thread's changes Postgres refused for good, with the error (admin)",
      security: bearerAuth,
      request: { params: z.object({ threadId: ThreadIdParam }) },
      responses: { 200: json(z.object({ changes: z.array(QuarantinedRow) }), "Quarantined changes"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const threadId = asUuid(c.req.valid("param").threadId, threadNotFound());
      return c.json({ changes: await (await threadAgent(c.env, threadId)).quarantined() }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/threads/{threadId}/quarantine/{seq}/retry",
      summary: "Put a quarantined change back in its place in the thread's outbox and try it again (admin)",
      security: bearerAuth,
      request: { params: z.object({ threadId: ThreadIdParam, seq: SeqParam }) },
      responses: { 200: json(z.object({ status: z.object({ backlog: Count, quarantined: Count }) }), "Tried again"), ...errors(401, 403, 404) },
    }),
    async (c) => resolveQuarantined(c, "retry"),
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/threads/{threadId}/quarantine/{seq}",
      summary: "Give up a quarantined change: it never reaches Postgres (admin)",
      security: bearerAuth,
      request: { params: z.object({ threadId: ThreadIdParam, seq: SeqParam }) },
      responses: { 200: json(z.object({ status: z.object({ backlog: Count, quarantined: Count }) }), "Dropped"), ...errors(401, 403, 404) },
    }),
    async (c) => resolveQuarantined(c, "drop"),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/stats",
      summary: "Recent service totals from Postgres (turns, tokens by model, tool calls and errors, search cache hits) and the outbox backlog (admin)",
      security: bearerAuth,
      request: { query: z.object({ hours: z.coerce.number().int().min(1).max(720).default(24).openapi({ description: "The window, in hours (1 to 720)" }) }) },
      responses: { 200: json(StatsSchema, "Totals over the window"), ...errors(401, 403, 422, 503) },
    }),
    async (c) => {
      const { hours } = c.req.valid("query");
      const since = new Date(Date.now() - hours * 3_600_000);
      const [totals, outbox] = await Promise.all([
        withDb(c.env, (db) => statsSince(db, since)),
        outboxMonitor(c.env)
          .summary()
          .catch(() => null),
      ]);
      return c.json({ window: { hours, since: since.toISOString() }, ...totals, outbox }, 200);
    },
  );
