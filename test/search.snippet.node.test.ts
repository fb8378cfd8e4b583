import { describe, expect, it } from "vitest";
import { queryTerms, snippet } from "../src/search/snippet.ts";

const marked = (s: { snippet: string; highlights: [number, number][] }) => s.highlights.map(([a, b]) => s.snippet.slice(a, b));

describe("message snippets", () => {
  it("highlight the query's words, matched by stem and case-insensitively, and nothing else", () => {
    const s = snippet("The Ferry to Isla Verde leaves at 7:40; ferries are often late.", "when do ferries leave for isla verde?");
    expect(s.snippet).toBe("The Ferry to Isla Verde leaves at 7:40; ferries are often late.");
    expect(marked(s)).toEqual(["Ferry", "Isla", "Verde", "leaves", "ferries"]);
    expect(queryTerms("the and of")).toEqual(new Set());
  });

  it("show the window of a long message that holds the most of the query's words, cut at words, with ellipses", () => {
    const filler = "Lorem ipsum dolor sit amet consectetur. ".repeat(20);
    const text = `${filler}My locker code is 4831 and the gym opens at six. ${filler}`;
    const s = snippet(text, "what is my locker code", 120);
    expect(s.snippet.startsWith("…")).toBe(true);
    expect(s.snippet.endsWith("…")).toBe(true);
    expect(s.snippet.length).toBeLessThanOrEqual(122);
    expect(marked(s)).toEqual(["locker", "code"]);
    // Cut between words, never inside one.
    expect(text.replace(/\s+/g, " ")).toContain(s.snippet.slice(1, -1));
    expect(/^…\w/.test(s.snippet) && /\w…$/.test(s.snippet)).toBe(true);
  });

  it("prefer a window with more distinct terms over one with more repeats of one", () => {
    const text = `${"alpha ".repeat(30)}${"x ".repeat(200)}alpha beta gamma${" y".repeat(200)}`;
    const s = snippet(text, "alpha beta gamma", 80);
    expect(marked(s)).toEqual(expect.arrayContaining(["alpha", "beta", "gamma"]));
  });

  it("show the start of a message that matched no word (a vector-only hit), collapsing whitespace", () => {
    const s = snippet("First   line\n\nsecond line " + "z ".repeat(200), "unrelated", 30);
    expect(s).toEqual({ snippet: "First line second line z z z z…", highlights: [] });
  });

  it("keep offsets right with characters outside the basic plane", () => {
    const s = snippet("🎉🎉 café au lait 🎉", "lait");
    expect(marked(s)).toEqual(["lait"]);
  });
});
