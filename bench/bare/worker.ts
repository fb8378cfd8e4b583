// The baseline bench/turns.ts measures Threadline against: a bare AIChatAgent with the same model
// client, the same hybrid_search (Threadline's search() and deps) and, after the turn, both messages
// written to Postgres in one transaction. No auth, no limits, no outbox, no logs.
import { AIChatAgent, type OnChatMessageOptions } from "@cloudflare/ai-chat";
import { routeAgentRequest } from "agents";
import { convertToModelMessages, isStepCount, streamText, tool, type UIMessage } from "ai";
import { z } from "zod";
import { chatModel } from "../../src/agent/model.ts";
import { getConfig } from "../../src/config.ts";
import { withDb } from "../../src/db/client.ts";
import { applyMessageOps } from "../../src/db/messages.ts";
import { search } from "../../src/search/search.ts";
import { searchDeps } from "../../src/search/deps.ts";

export class BareAgent extends AIChatAgent<Env> {
  override async onChatMessage(_onFinish: unknown, options?: OnChatMessageOptions) {
    const config = getConfig(this.env);
    const { model, id } = chatModel(config);
    // The thread's owner scopes the search as Threadline's does; the client names it (no auth here).
    const ownerId = typeof options?.body?.owner === "string" ? options.body.owner : null;
    const deps = searchDeps(this.env);
    const tools = {
      hybrid_search: tool({
        description: "Search the user's documents and the shared knowledge base.",
        inputSchema: z.strictObject({ query: z.string().trim().min(1).max(500), limit: z.number().int().min(1).max(20).default(5) }),
        execute: async ({ query, limit }) => {
          const res = await search(deps, { query, limit, mode: "hybrid", scope: { ownerId } });
          return { status: "ok" as const, results: res.results, cached: res.cached };
        },
      }),
    };
    const user = this.messages.at(-1);
    const result = streamText({
      model,
      system: "You are a helpful assistant.",
      messages: await convertToModelMessages(this.messages, { tools, ignoreIncompleteToolCalls: true }),
      tools,
      stopWhen: isStepCount(5),
      abortSignal: options?.abortSignal,
    });
    return result.toUIMessageStreamResponse({
      originalMessages: this.messages,
      // Without it the response message has an empty id; the SDK adopts this one (the start chunk carries it).
      generateMessageId: () => crypto.randomUUID(),
      messageMetadata: ({ part }) =>
        part.type === "finish" ? { model: id, usage: { inputTokens: part.totalUsage.inputTokens, outputTokens: part.totalUsage.outputTokens } } : undefined,
      onEnd: async ({ responseMessage }) => {
        const ops = [user, responseMessage].filter((m): m is UIMessage => m !== undefined).map((m) => ({ op: "upsert" as const, message: m }));
        await withDb(this.env, (db) => applyMessageOps(db, this.name, ops));
      },
    });
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    return (await routeAgentRequest(request, env)) ?? new Response("not found", { status: 404 });
  },
};
