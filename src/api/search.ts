import { createRoute, z } from "@hono/zod-openapi";
import { search as runSearch } from "../search/search";
import { searchDeps } from "../search/worker";
import { documentScope } from "../auth/access";
import { apiRouter, bearerAuth, errors, json, takeUserRate } from "./http";

export const MAX_SEARCH_LIMIT = 100;

const SearchQuery = z.object({
  q: z.string().trim().min(1).max(1000),
  limit: z.coerce.number().int().min(1).max(MAX_SEARCH_LIMIT).default(10),
  mode: z.enum(["hybrid", "lexical", "vector"]).default("hybrid"),
});

const Hit = z
  .object({ documentId: z.uuid(), chunkId: z.number().int(), title: z.string(), text: z.string(), score: z.number() })
  .openapi("SearchHit");

export const search = apiRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      summary: "Search the caller's documents and the global ones (BM25, vectors, or both fused); a user may make search_api_rate_limit calls per window",
      security: bearerAuth,
      request: { query: SearchQuery },
      responses: {
        200: json(z.object({ results: z.array(Hit), cached: z.boolean(), mode: SearchQuery.shape.mode.unwrap() }), "Ranked passages"),
        ...errors(401, 422, 429, 503),
      },
    }),
    async (c) => {
      const { q, limit, mode } = c.req.valid("query");
      await takeUserRate(c, "search");
      const started = Date.now();
      const res = await runSearch(searchDeps(c.env), { query: q, limit, mode, scope: documentScope(c.get("principal")) });
      Object.assign(c.get("logFields"), { searchMode: mode, searchMs: Date.now() - started, cacheHit: res.cached, results: res.results.length });
      return c.json(res, 200);
    },
  );
