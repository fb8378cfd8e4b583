import { describe, expect, it } from "vitest";
import { firstExchange, heuristicTitle, MAX_AUTO_TITLE_CHARS, plainTitle } from "../src/agent/titles.ts";

describe("titles", () => {
  it("a model's answer becomes plain text: no markdown, label, quotes or final period; one line; bounded", () => {
    expect(plainTitle('**Title:** "Tidal energy basics"\n\nHope this helps!')).toBe("Tidal energy basics");
    expect(plainTitle("# Espresso dosing.")).toBe("Espresso dosing");
    expect(plainTitle("`Travel policy` _questions_")).toBe("Travel policy questions");
    expect(plainTitle("“Onboarding checklist”")).toBe("Onboarding checklist");
    expect(plainTitle("[Incident runbook](https://example.com)")).toBe("Incident runbook");
    expect(plainTitle("\n\n")).toBe("");
    const long = plainTitle("word ".repeat(60));
    expect(long.length).toBeLessThanOrEqual(MAX_AUTO_TITLE_CHARS);
    expect(long.endsWith(" ")).toBe(false);
  });

  it("offline: the first message's subject, without greetings and politeness, a few words, capitalised", () => {
    expect(heuristicTitle("hi! can you tell me how many grams of coffee for a double shot?")).toBe("How many grams of coffee for");
    expect(heuristicTitle("Please help me plan a trip to Lisbon in May.")).toBe("Plan a trip to Lisbon in");
    expect(heuristicTitle("**What** is `BM25`?")).toBe("What is BM25");
    expect(heuristicTitle("hello", "Hello! What would you like to talk about?")).toBe("What would you like to talk");
    expect(heuristicTitle("👋", "🙂")).toBe("New conversation");
    expect(heuristicTitle("see https://example.com/x ok, tides tables for Brest")).toBe("See ok, tides tables for Brest");
  });

  it("the first exchange is the first user message with text and the first reply with text after it", () => {
    const m = (id: string, role: "user" | "assistant", text: string) => ({ id, role, parts: text ? [{ type: "text" as const, text }] : [] });
    expect(firstExchange([m("1", "user", "hi")])).toBeUndefined();
    expect(firstExchange([m("1", "user", "hi"), m("2", "assistant", ""), m("3", "assistant", "hello")])).toEqual({ user: "hi", reply: "hello" });
  });
});
