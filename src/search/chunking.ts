/** Chunking: whole sentences packed up to a size, each chunk repeating the previous one's tail for context. */
export type ChunkOptions = { maxChars: number; overlapChars: number };

export const DEFAULT_CHUNKING: ChunkOptions = { maxChars: 2000, overlapChars: 300 };

// A sentence ends at . ! ? (optionally closed by quotes or brackets) before whitespace and a capital or
// digit, or at a blank line; not after a common abbreviation ("Dr. Smith", "et al. 2004").
const SENTENCE_END = /(?<!\b(?:Dr|Mr|Mrs|Ms|Prof|St|vs|Fig|Figs|No|al|e\.g|i\.e|approx|ca)\.)(?<=[.!?]["')\]]*)\s+(?=["'([]?[\p{Lu}\p{N}])|\n\s*\n/u;

export function sentences(text: string): string[] {
  return text
    .split(SENTENCE_END)
    .map((s) => s.replace(/\s+/g, " ").trim())
    .filter(Boolean);
}

/** Splits one over-long sentence at word boundaries. */
function pieces(sentence: string, maxChars: number): string[] {
  if (sentence.length <= maxChars) return [sentence];
  const out: string[] = [];
  let cur = "";
  const words = sentence.split(" ").flatMap((w) => w.match(new RegExp(`.{1,${maxChars}}`, "gsu")) ?? []);
  for (const word of words) {
    if (cur && cur.length + 1 + word.length > maxChars) {
      out.push(cur);
      cur = "";
    }
    cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) out.push(cur);
  return out;
}

export function chunkText(text: string, { maxChars, overlapChars }: ChunkOptions = DEFAULT_CHUNKING): string[] {
  const units = sentences(text).flatMap((s) => pieces(s, maxChars));
  const chunks: string[] = [];
  let cur: string[] = [];
  let len = 0;
  let fresh = 0; // sentences in `cur` not already emitted in the previous chunk
  for (const unit of units) {
    if (fresh && len + 1 + unit.length > maxChars) {
      chunks.push(cur.join(" "));
      // Carry whole trailing sentences up to overlapChars into the next chunk.
      const tail: string[] = [];
      let tailLen = 0;
      for (let i = cur.length - 1; i >= 0; i--) {
        const grown = tailLen + cur[i]!.length + 1;
        if (grown > overlapChars || grown + unit.length > maxChars) break;
        tail.unshift(cur[i]!);
        tailLen = grown;
      }
      cur = tail;
      len = tailLen;
      fresh = 0;
    }
    cur.push(unit);
    len += unit.length + 1;
    fresh++;
  }
  if (fresh) chunks.push(cur.join(" "));
  return chunks;
}
