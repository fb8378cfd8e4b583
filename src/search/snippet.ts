import { stem, STOPWORDS } from "./embeddings.ts";

/** A passage of a text around what a query matched, and where in it (UTF-16 offsets, end exclusive) the matching words are. */
export type Snippet = { snippet: string; highlights: [number, number][] };

const WORD = /[\p{L}\p{N}]+/gu;
/** Characters of context kept before the first match of the chosen window. */
const LEAD = 40;

/** How words are matched: by stem, and with a final "e" dropped ("leave" and "leaves", "code" and "codes" meet). */
const matchKey = (word: string) => {
  const s = stem(word.toLowerCase());
  return s.length > 3 ? s.replace(/e$/, "") : s;
};

const words = (text: string) => Array.from(text.matchAll(WORD), (m) => ({ word: m[0], start: m.index, end: m.index + m[0].length }));

/** The query's content words, as the stems a text's words are matched by (the stems the offline embedder uses). */
export function queryTerms(query: string): Set<string> {
  return new Set(words(query.toLowerCase()).flatMap(({ word }) => (STOPWORDS.has(word) ? [] : [matchKey(word)])));
}

/**
 * The window of at most `maxChars` (whitespace collapsed) holding the most distinct query terms,
 * then the most matches, cut at word boundaries with "…" where it was cut, and the matches in it.
 * A text that matches nothing (a vector-only hit) shows its start. Pure: the search API's message
 * results call it for their highlighted snippet.
 */
export function snippet(text: string, query: string, maxChars = 200): Snippet {
  const flat = text.replace(/\s+/g, " ").trim();
  const terms = queryTerms(query);
  const all = words(flat);
  const hits = all.filter((w) => terms.has(matchKey(w.word)));
  let start = 0;
  if (flat.length > maxChars && hits.length) {
    let best = { distinct: -1, count: -1, at: 0 };
    for (const [i, h] of hits.entries()) {
      const inWindow = hits.slice(i).filter((o) => o.end <= h.start + maxChars - LEAD);
      const distinct = new Set(inWindow.map((o) => matchKey(o.word))).size;
      if (distinct > best.distinct || (distinct === best.distinct && inWindow.length > best.count)) best = { distinct, count: inWindow.length, at: h.start };
    }
    start = Math.max(0, Math.min(best.at - LEAD, flat.length - maxChars));
  }
  let end = Math.min(flat.length, start + maxChars);
  // Whole words only: move the cuts out of any word they fall in.
  if (start > 0) start = all.find((w) => w.start >= start)?.start ?? start;
  if (end < flat.length) end = [...all].reverse().find((w) => w.end <= end)?.end ?? end;
  const prefix = start > 0 ? "…" : "";
  const body = flat.slice(start, end).trim();
  const lead = start + (flat.slice(start, end).length - flat.slice(start, end).trimStart().length);
  const highlights = hits
    .filter((h) => h.start >= lead && h.end <= lead + body.length)
    .map((h): [number, number] => [h.start - lead + prefix.length, h.end - lead + prefix.length]);
  return { snippet: prefix + body + (end < flat.length ? "…" : ""), highlights };
}
