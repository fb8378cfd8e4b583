import { describe, expect, it } from "vitest";
import { DEMO_DOCUMENTS } from "../scripts/lib/demo.ts";
import { answerFromPassages } from "../src/agent/offline-model.ts";

// The demo user's documents as hybrid_search returns them for the README's question: the espresso
// guide first, the rest with the near-zero scores the fusion gives unrelated passages.
const hits = (order: number[], scores = [1, 0.022, 0.008, 0]) => order.map((i, rank) => ({ ...DEMO_DOCUMENTS[i]!, score: scores[rank]! }));

describe("the offline model's answer from search results", () => {
  it("quotes the one sentence that answers the README's demo question, citing its passage, and nothing from the other documents", () => {
    expect(answerFromPassages("how many grams of coffee for a double shot?", hits([0, 1, 3, 2]))).toBe(
      [
        "Offline model: your documents say:",
        "> Use 18 grams of finely ground coffee for a double shot and aim for 36 grams of espresso in 25 to 30 seconds. [1]",
        "Sources: [1] Office espresso machine: daily care",
      ].join("\n\n"),
    );
  });

  it("cites the passage by its place in the results", () => {
    const answer = answerFromPassages("who approves expense reports above 2,000 euros?", hits([0, 1], [0.6, 1]));
    expect(answer).toContain("> Your manager approves expense reports; reports above 2,000 euros also need finance approval. [2]");
    expect(answer).toContain("Sources: [2] Travel and expense policy");
  });

  it("reads only the passages that score near the best one, however well a weak one's words match", () => {
    const passages = [
      { title: "A", score: 1, text: "Coffee beans are roasted weekly." },
      { title: "B", score: 0.1, text: "Coffee beans are roasted weekly in Lisbon." },
    ];
    expect(answerFromPassages("where are coffee beans roasted in Lisbon?", passages)).toBe(
      "Offline model: your documents say:\n\n> Coffee beans are roasted weekly. [1]\n\nSources: [1] A",
    );
  });

  it("matches word forms (descaled, descaling) and quotes several sentences when they score alike, in document order", () => {
    const answer = answerFromPassages("what do I do in my first and second week?", hits([3, 0], [1, 0.2]));
    expect(answer.indexOf("In your first week")).toBeGreaterThan(0);
    expect(answer.indexOf("In your second week")).toBeGreaterThan(answer.indexOf("In your first week"));
    expect(answerFromPassages("when is it descaled?", hits([0]))).toContain("> Descaling is done by facilities on the first Monday of each month. [1]");
  });

  it("says plainly when nothing relevant was found: no results, no shared words, or only stop words", () => {
    for (const [q, passages] of [
      ["how many grams of coffee?", []],
      ["tell me about the weather on mars", hits([3, 2, 1, 0], [0.1, 0.06, 0.01, 0])],
      ["what is this?", hits([0])],
    ] as const)
      expect(answerFromPassages(q, passages)).toBe(
        `Offline model: I searched your documents for "${q}" and found nothing about it. Add a document that covers it, or set OPENAI_API_KEY to use a real model.`,
      );
  });

  it("reads markdown as text and counts a sentence repeated by overlapping chunks once", () => {
    const md = { title: "Guide", score: 1, text: "# Brewing\n\nUse **18 grams** of [coffee](http://x) per shot." };
    const overlap = { title: "Guide", score: 0.9, text: "Use 18 grams of coffee per shot. Clean the basket." };
    expect(answerFromPassages("grams of coffee", [md, overlap])).toBe("Offline model: your documents say:\n\n> Use 18 grams of coffee per shot. [1]\n\nSources: [1] Guide");
  });
});
