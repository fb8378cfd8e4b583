import { z } from "@hono/zod-openapi";

/** OpenAPI schemas more than one router answers with. */
export const UsageSchema = z.object({ inputTokens: z.number().int(), outputTokens: z.number().int(), totalTokens: z.number().int(), turns: z.number().int() }).openapi("Usage");
