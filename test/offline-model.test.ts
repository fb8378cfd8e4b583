import { isStepCount, streamText, tool, type ToolSet } from "ai";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { OfflineModel } from "../src/agent/offline-model.ts";

const search = tool({
  description: "search documents",
  inputSchema: z.object({ query: z.string(), limit: z.number().optional() }),
  execute: async ({ query }) => ({
    status: "ok",
    results: [
      { title: `About ${query}`, score: 0.9, text: `The ${query} extension stores vectors in Postgres. It was released in 2021.` },
      { title: "Second hit", score: 0.1, text: "Nothing to see here." },
    ],
  }),
});

async function run(prompt: string, tools: ToolSet = { search }) {
  const result = streamText({ model: new OfflineModel(0), prompt, tools, stopWhen: isStepCount(3) });
  const deltas: string[] = [];
  for await (const part of result.fullStream) if (part.type === "text-delta") deltas.push(part.text);
  return { deltas, text: await result.text, steps: await result.steps };
}

describe("the offline model", () => {
  it("calls an offered search tool with the user's question, then quotes the best sentence of its results", async () => {
    const { text, steps, deltas } = await run("what does pgvector store");
    expect(steps[0]!.toolCalls).toEqual([expect.objectContaining({ toolName: "search", input: { query: "what does pgvector store" } })]);
    expect(text).toBe(
      "Offline model: your documents say:\n\n> The what does pgvector store extension stores vectors in Postgres. [1]\n\nSources: [1] About what does pgvector store",
    );
    expect(deltas.length).toBeGreaterThan(5);
  });

  it("answers directly when no tool takes a query, never calls a tool that takes free text, and is deterministic", async () => {
    const written: string[] = [];
    const noQuery = {
      clock: tool({ inputSchema: z.object({}), execute: async () => "noon" }),
      save_note: tool({ inputSchema: z.object({ text: z.string() }), execute: async ({ text }) => void written.push(text) }),
    };
    const a = await run("hello there", noQuery);
    const b = await run("hello there", noQuery);
    expect(a.steps).toHaveLength(1);
    expect(written).toEqual([]);
    expect(a.text).toMatch(/^Offline model: you said "hello there"/);
    expect(b.deltas).toEqual(a.deltas);
  });

  it("says so when a search fails", async () => {
    const down = tool({ inputSchema: z.object({ query: z.string() }), execute: async () => ({ status: "search_unavailable", message: "Search is unavailable right now." }) });
    expect((await run("anything", { hybrid_search: down })).text).toBe("Offline model: I could not search your documents. Search is unavailable right now.");
  });
});
