/** Chunking: whole sentences packed up to a size, each chunk repeating the previous one's tail for context. */
export type ChunkOptions = { maxChars: number; overlapChars: number };

export const DEFAULT_CHUNKING: ChunkOptions = { maxChars: 2000, overlapChars: 300 };

// A sentence ends at . ! ? (optionally closed by quotes or brackets) before whitespace, or at a blank line.
const SENTENCE_END = /(?<=[.!?]["')\]]*)\s+(?=["'(\[]?[\p{Lu}\p{N}])|\n\s*\n/u;

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
  for (const word of sentence.split(" ")) {
    if (cur && cur.length + 1 + word.length > maxChars) (out.push(cur), (cur = ""));
    cur = cur ? `${cur} ${word.slice(0, maxChars)}` : word.slice(0, maxChars);
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
      for (let i = cur.length - 1; i >= 0 && tailLen + cur[i]!.length + unit.length + 1 <= Math.min(overlapChars, maxChars); i--) {
        tail.unshift(cur[i]!);
        tailLen += cur[i]!.length + 1;
      }
      (cur = tail), (len = tailLen), (fresh = 0);
    }
    cur.push(unit);
    len += unit.length + 1;
    fresh++;
  }
  if (fresh) chunks.push(cur.join(" "));
  return chunks;
}
