import { describe, expect, it } from "vitest";
import { chunkText, sentences } from "../src/search/chunking.ts";

describe("chunking", () => {
  it("splits sentences, not abbreviations", () => {
    expect(sentences('Dr. Smith went home. He said "Yes." Then (3) more, see Fig. 2 and Jones et al. 2004.\n\nA new paragraph')).toEqual([
      "Dr. Smith went home.",
      'He said "Yes."',
      "Then (3) more, see Fig. 2 and Jones et al. 2004.",
      "A new paragraph",
    ]);
  });

  it("packs whole sentences up to the size and repeats the previous chunk's last sentences", () => {
    const text = Array.from({ length: 30 }, (_, i) => `Sentence number ${i} has a few words in it.`).join(" ");
    const chunks = chunkText(text, { maxChars: 200, overlapChars: 60 });
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(200);
    for (const c of chunks) expect(c).toMatch(/^Sentence number \d+ .*\.$/);
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.startsWith(chunks[i - 1]!.split(/(?<=\.) /).at(-1)!)).toBe(true);
    // Every sentence is in some chunk.
    for (let i = 0; i < 30; i++) expect(chunks.some((c) => c.includes(`number ${i} `))).toBe(true);
  });

  it("cuts over-long sentences and words at the size, losing nothing", () => {
    const chunks = chunkText(`${"x".repeat(450)} tail.`, { maxChars: 200, overlapChars: 60 });
    expect(chunks.map((c) => c.length)).toEqual([200, 200, 56]);
    expect(chunkText("   ")).toEqual([]);
  });
});
