import { isStepCount, streamText, tool } from "ai";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { OfflineModel } from "../src/agent/offline-model";

const search = tool({
  description: "search documents",
  inputSchema: z.object({ query: z.string(), limit: z.number().optional() }),
  execute: async ({ query }) => ({ results: [{ title: `About ${query}` }, { title: "Second hit" }] }),
});

async function run(prompt: string, tools = { search }) {
  const result = streamText({ model: new OfflineModel(0), prompt, tools, stopWhen: isStepCount(3) });
  const deltas: string[] = [];
  for await (const part of result.fullStream) if (part.type === "text-delta") deltas.push(part.text);
  return { deltas, text: await result.text, steps: await result.steps };
}

describe("the offline model", () => {
  it("calls an offered search tool with the user's question, then answers from its results", async () => {
    const { text, steps, deltas } = await run("pgvector");
    expect(steps[0]!.toolCalls).toEqual([expect.objectContaining({ toolName: "search", input: { query: "pgvector" } })]);
    expect(text).toBe('Offline model: I looked this up for "pgvector". search returned 2 result(s): [1] About pgvector, [2] Second hit.');
    expect(deltas.length).toBeGreaterThan(5);
  });

  it("answers directly when no tool takes a query, and is deterministic", async () => {
    const noQuery = { clock: tool({ inputSchema: z.object({}), execute: async () => "noon" }) };
    const a = await run("hello there", noQuery as never);
    const b = await run("hello there", noQuery as never);
    expect(a.steps).toHaveLength(1);
    expect(a.text).toMatch(/^Offline model: you said "hello there"/);
    expect(b.deltas).toEqual(a.deltas);
  });
});
