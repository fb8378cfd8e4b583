import { asSchema, type ToolSet } from "ai";
import { describe, expect, it } from "vitest";
import { agentTools } from "../src/agent/tools/index.ts";

const offered = (): ToolSet => agentTools({ env: {} as Env, threadId: "t", storage: {} as never, ownerId: async () => "u", flags: { hybrid_search: true } }).tools;

describe("tool schemas", () => {
  it("each tool's input schema is built once: the SDK reuses it, and its JSON Schema, across turns", () => {
    const [first, second] = [offered(), offered()];
    expect(Object.keys(first).sort()).toEqual(["current_time", "delete_document", "hybrid_search", "save_note"]);
    for (const name of Object.keys(first)) {
      const schema = asSchema(first[name]!.inputSchema);
      // A bare zod schema would get a new wrapper, and a new conversion, at every model call.
      expect(asSchema(second[name]!.inputSchema), name).toBe(schema);
      expect(schema.jsonSchema, name).toBe(asSchema(second[name]!.inputSchema).jsonSchema);
      expect(schema.jsonSchema, name).toMatchObject({ type: "object", additionalProperties: false });
    }
  });

  it("and still validates: defaults applied, bad input refused", async () => {
    const search = asSchema(offered().hybrid_search!.inputSchema);
    expect(await search.validate!({ query: "espresso" })).toEqual({ success: true, value: { query: "espresso", limit: 5 } });
    expect((await search.validate!({ query: "espresso", limit: 0 })).success).toBe(false);
    expect((await search.validate!({ query: "x", extra: 1 })).success).toBe(false);
    const time = asSchema(offered().current_time!.inputSchema);
    expect((await time.validate!({ timeZone: "Mars/Olympus" })).success).toBe(false);
  });
});
