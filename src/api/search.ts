import { createRoute, z } from "@hono/zod-openapi";
import { searchCorpora } from "../search/search.ts";
import { searchDeps } from "../search/deps.ts";
import { documentScope } from "../auth/access.ts";
import { apiRouter, bearerAuth, errors, json, takeUserRate } from "./http.ts";

export const MAX_SEARCH_LIMIT = 100;

const SearchQuery = z.object({
  q: z.string().trim().min(1).max(1000),
  limit: z.coerce.number().int().min(1).max(MAX_SEARCH_LIMIT).default(10),
  mode: z.enum(["hybrid", "lexical", "vector"]).default("hybrid"),
  scope: z
    .enum(["documents", "messages", "all"])
    .default("documents")
    .openapi({ description: "documents: the caller's and the global documents; messages: the caller's own messages, across their threads; all: both, ranked together" }),
});

const Hit = z.object({ type: z.literal("document"), documentId: z.uuid(), chunkId: z.number().int(), title: z.string(), text: z.string(), score: z.number() }).openapi("SearchHit");

const MessageHit = z
  .object({
    type: z.literal("message"),
    threadId: z.uuid(),
    threadTitle: z.string().nullable(),
    messageId: z.string(),
    role: z.enum(["user", "assistant"]),
    createdAt: z.iso.datetime(),
    snippet: z.string().openapi({ description: "Up to 200 characters of the message around what matched (whitespace collapsed), with … where it was cut" }),
    highlights: z
      .array(z.tuple([z.number().int(), z.number().int()]))
      .openapi({ description: "[start, end) offsets (UTF-16 code units) of the matching words in `snippet`; plain text, never HTML" }),
    score: z.number(),
  })
  .openapi("MessageSearchHit");

export const search = apiRouter().openapi(
  createRoute({
    method: "get",
    path: "/",
    summary:
      "Search the caller's documents and the global ones, or the caller's own messages across their threads, or both (BM25, vectors, or both fused); a user may make search_api_rate_limit calls per window",
    security: bearerAuth,
    request: { query: SearchQuery },
    responses: {
      200: json(
        z.object({
          results: z.array(z.discriminatedUnion("type", [Hit, MessageHit])),
          cached: z.boolean(),
          mode: SearchQuery.shape.mode.unwrap(),
          scope: SearchQuery.shape.scope.unwrap(),
        }),
        "Ranked passages (documents) and messages, best first",
      ),
      ...errors(401, 422, 429, 503),
    },
  }),
  async (c) => {
    const { q, limit, mode, scope } = c.req.valid("query");
    await takeUserRate(c, "search");
    const started = Date.now();
    const res = await searchCorpora(searchDeps(c.env), { query: q, limit, mode, corpus: scope, scope: documentScope(c.get("principal")) });
    Object.assign(c.get("logFields"), { searchMode: mode, searchScope: scope, searchMs: Date.now() - started, cacheHit: res.cached, results: res.results.length });
    return c.json({ ...res, results: res.results as z.infer<typeof Hit | typeof MessageHit>[], scope }, 200);
  },
);
