import { createOpenAI } from "@ai-sdk/openai";
import { embedMany } from "ai";
import type { Config } from "../config.ts";
import { fetchRetryingLostConnections } from "../resilience.ts";

/** Turns texts into unit vectors of a fixed width; `name` is stored with every vector it makes. */
export type Embedder = {
  name: string;
  dimensions: number;
  /** Weight of this embedder's ranking in hybrid fusion (lexical BM25 weighs 1), measured in bench/README.md. */
  fusionWeight: number;
  embed(texts: string[]): Promise<number[][]>;
};

/** The configured embedder: OpenAI (or a compatible server), or the offline one under the same rule as the chat model. */
export function embedderFor(config: Config): Embedder {
  const dimensions = config.EMBEDDING_DIMENSIONS;
  if (config.offline) return offlineEmbedder(dimensions);
  const openai = createOpenAI({ apiKey: config.OPENAI_API_KEY ?? "unused", baseURL: config.OPENAI_BASE_URL, fetch: fetchRetryingLostConnections });
  const model = openai.embedding(config.EMBEDDING_MODEL);
  return {
    name: `openai:${config.EMBEDDING_MODEL}:${dimensions}`,
    dimensions,
    // Semantic vectors carry what BM25 misses; equal weight is the usual start (not measurable offline).
    fusionWeight: 0.5,
    async embed(texts) {
      if (!texts.length) return [];
      const { embeddings } = await embedMany({ model, values: texts, dimensions, maxParallelCalls: 4, maxRetries: 2 });
      return embeddings;
    },
  };
}

export const STOPWORDS = new Set(
  "a about above after again against all am an and any are as at be because been before being below between both but by can did do does doing down during each few for from further had has have having he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such than that the their theirs them themselves then there these they this those through to too under until up very was we were what when where which while who whom why will with you your yours yourself yourselves".split(
    " ",
  ),
);

/** A crude suffix stripper: enough to make "cells"/"cell" and "regulated"/"regulates" meet. */
export function stem(w: string): string {
  if (w.length <= 4) return w;
  for (const [suffix, repl] of [
    ["ational", "ate"],
    ["ization", "ize"],
    ["iveness", "ive"],
    ["fulness", "ful"],
    ["ousness", "ous"],
    ["ities", "ity"],
    ["ies", "y"],
    ["ing", ""],
    ["edly", ""],
    ["ed", ""],
    ["ly", ""],
    ["es", ""],
    ["s", ""],
  ] as const) {
    if (w.endsWith(suffix) && w.length - suffix.length >= 3 && !(suffix === "s" && w.endsWith("ss"))) return w.slice(0, -suffix.length) + repl;
  }
  return w;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export const OFFLINE_EMBEDDER_VERSION = "hash-v1";
// The offline vectors are a fuzzier copy of the lexical signal (nDCG@10 0.48 vs BM25's 0.70 on SciFact):
// heavier weights drag the fusion below BM25 alone (0.2: 0.7017, 0.3: 0.6942), 0.1 lifts it to 0.7025.
const OFFLINE_FUSION_WEIGHT = 0.1;

/**
 * Deterministic, download-free embedder: signed feature hashing of stemmed words (sublinear tf, a
 * length-based weight standing in for rarity), word bigrams and character trigrams, L2-normalised.
 * It knows no synonyms; it gives the vector side something lexical-but-fuzzy to fuse.
 */
export function offlineEmbedder(dimensions: number): Embedder {
  const embedOne = (text: string): number[] => {
    const v = new Float64Array(dimensions);
    const add = (feature: string, weight: number) => {
      const h = fnv1a(feature);
      v[h % dimensions]! += h & 0x80000000 ? -weight : weight;
    };
    const words = (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => !STOPWORDS.has(w)).map(stem);
    const tf = new Map<string, number>();
    for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1);
    for (const [w, n] of tf) {
      const weight = (1 + Math.log(n)) * Math.min(1.5, 0.5 + w.length / 8);
      add(`w:${w}`, weight);
      const padded = `<${w}>`;
      for (let i = 0; i + 3 <= padded.length; i++) add(`c:${padded.slice(i, i + 3)}`, (0.35 * weight) / Math.sqrt(padded.length - 2));
    }
    for (let i = 0; i + 1 < words.length; i++) add(`b:${words[i]} ${words[i + 1]}`, 0.5);
    let norm = 0;
    for (const x of v) norm += x * x;
    norm = Math.sqrt(norm) || 1;
    return Array.from(v, (x) => x / norm);
  };
  return { name: `offline:${OFFLINE_EMBEDDER_VERSION}:${dimensions}`, dimensions, fusionWeight: OFFLINE_FUSION_WEIGHT, embed: async (texts) => texts.map(embedOne) };
}
