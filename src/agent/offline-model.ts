import type {
  JSONValue,
  LanguageModelV4,
  LanguageModelV4CallOptions,
  LanguageModelV4Content,
  LanguageModelV4FunctionTool,
  LanguageModelV4Prompt,
  LanguageModelV4StreamPart,
} from "@ai-sdk/provider";
import { markdownToText, type SearchHit } from "../messages.ts";
import { sentences } from "../search/chunking.ts";

export const OFFLINE_MODEL_ID = "threadline-offline";

/**
 * A deterministic language model for running without an API key. It speaks the same interface as
 * the OpenAI models, so the agent's code path is unchanged: on a user turn it calls every offered
 * search tool with the question, then answers by quoting the sentences of the passages found that
 * best match it (see answerFromPassages), streaming in small chunks.
 */
export class OfflineModel implements LanguageModelV4 {
  readonly specificationVersion = "v4";
  readonly provider = "threadline";
  readonly modelId = OFFLINE_MODEL_ID;
  readonly supportedUrls = {};

  private readonly chunkDelayMs: number;
  constructor(chunkDelayMs = 15) {
    this.chunkDelayMs = chunkDelayMs;
  }

  async doGenerate(options: LanguageModelV4CallOptions) {
    const plan = respond(options);
    const content: LanguageModelV4Content[] = plan.toolCalls.length ? plan.toolCalls.map((c) => ({ type: "tool-call", ...c })) : [{ type: "text", text: plan.text }];
    return { content, finishReason: plan.finishReason, usage: plan.usage, warnings: [] };
  }

  async doStream(options: LanguageModelV4CallOptions) {
    const plan = respond(options);
    const delay = this.chunkDelayMs;
    const parts: LanguageModelV4StreamPart[] = [
      { type: "stream-start", warnings: [] },
      { type: "response-metadata", modelId: OFFLINE_MODEL_ID },
    ];
    if (plan.toolCalls.length) {
      for (const call of plan.toolCalls) parts.push({ type: "tool-call", ...call });
    } else {
      parts.push({ type: "text-start", id: "t0" });
      for (const delta of chunk(plan.text)) parts.push({ type: "text-delta", id: "t0", delta });
      parts.push({ type: "text-end", id: "t0" });
    }
    parts.push({ type: "finish", finishReason: plan.finishReason, usage: plan.usage });
    const signal = options.abortSignal;
    const stream = new ReadableStream<LanguageModelV4StreamPart>({
      async pull(controller) {
        const part = parts.shift();
        if (!part || signal?.aborted) return controller.close();
        if (delay && part.type === "text-delta") await new Promise((r) => setTimeout(r, delay));
        controller.enqueue(part);
      },
    });
    return { stream };
  }
}

type ToolCallPlan = { toolCallId: string; toolName: string; input: string };

function respond(options: LanguageModelV4CallOptions) {
  const { prompt } = options;
  const last = prompt.at(-1);
  const question = lastUserText(prompt);
  const tools = (options.tools ?? []).filter((t): t is LanguageModelV4FunctionTool => t.type === "function");
  let toolCalls: ToolCallPlan[] = [];
  let text: string;
  if (last?.role === "user" && options.toolChoice?.type !== "none") {
    const acting = actingCall(tools, question);
    toolCalls = acting
      ? [{ toolCallId: `offline-${prompt.length}-act`, ...acting }]
      : tools.flatMap((tool, i) => {
          const input = queryInput(tool, question);
          return input ? [{ toolCallId: `offline-${prompt.length}-${i}`, toolName: tool.name, input: JSON.stringify(input) }] : [];
        });
  }
  if (last?.role === "tool") {
    const results = last.content.flatMap((p) => (p.type === "tool-result" ? [p] : []));
    text = results.map((r) => fromToolResult(r.toolName, outputValue(r.output), question, isDenial(r.output))).join("\n\n");
  } else {
    text = question
      ? `Offline model: you said "${question}". I am Threadline's built-in offline model; set OPENAI_API_KEY to talk to a real one.`
      : "Offline model: I have nothing to answer yet.";
  }
  const inputTokens = countTokens(JSON.stringify(prompt));
  const outputTokens = toolCalls.length ? countTokens(toolCalls.map((c) => c.input).join(" ")) : countTokens(text);
  return {
    toolCalls,
    text,
    finishReason: { unified: toolCalls.length ? "tool-calls" : "stop", raw: undefined } as const,
    usage: {
      inputTokens: { total: inputTokens, noCache: inputTokens, cacheRead: 0, cacheWrite: 0 },
      outputTokens: { total: outputTokens, text: outputTokens, reasoning: 0 },
    },
  };
}

function lastUserText(prompt: LanguageModelV4Prompt): string {
  for (let i = prompt.length - 1; i >= 0; i--) {
    const m = prompt[i]!;
    if (m.role === "user")
      return m.content
        .flatMap((p) => (p.type === "text" ? [p.text] : []))
        .join(" ")
        .trim();
  }
  return "";
}

/**
 * What the user asks to be done, when an offered tool does it: "save/note/remember ..." saves a note
 * (the rest of the sentence is its text), "delete (the) document <id>" deletes one. Both tools wait
 * for the user's approval, so the offline model shows that flow too.
 */
function actingCall(tools: LanguageModelV4FunctionTool[], question: string): { toolName: string; input: string } | undefined {
  const has = (name: string) => tools.some((t) => t.name === name);
  const remember = /^(?:please\s+)?(?:save|note|remember|keep)(?:\s+(?:a\s+note|this|that))?(?:\s*(?:that|:))?\s+(.+)$/is.exec(question);
  if (remember && has("save_note")) {
    const text = remember[1]!.trim();
    const title = text
      .split(/\s+/)
      .slice(0, 8)
      .join(" ")
      .replace(/[.,;:!?]+$/, "");
    return { toolName: "save_note", input: JSON.stringify({ title: title.slice(0, 200), text: text.slice(0, 20_000) }) };
  }
  const del = /\b(?:delete|remove|forget)\b.*?\bdocument\b.*?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/is.exec(question);
  if (del && has("delete_document")) return { toolName: "delete_document", input: JSON.stringify({ documentId: del[1]!.toLowerCase() }) };
  return undefined;
}

// Only tools that look things up: one taking free `text` may well write it somewhere (a note).
const QUERY_KEYS = ["query", "q", "question"];

/** Fills a tool's input from its JSON schema when it takes a text query; tools that don't are not called. */
function queryInput(tool: LanguageModelV4FunctionTool, question: string): Record<string, unknown> | undefined {
  const schema = tool.inputSchema as { properties?: Record<string, { type?: string }>; required?: string[] };
  const props = schema.properties ?? {};
  const key = QUERY_KEYS.find((k) => props[k]?.type === "string");
  if (!key || !question) return undefined;
  const input: Record<string, unknown> = { [key]: question };
  for (const name of schema.required ?? []) {
    if (name in input) continue;
    const type = props[name]?.type;
    if (type === "number" || type === "integer") input[name] = 5;
    else if (type === "boolean") input[name] = false;
    else return undefined;
  }
  return input;
}

/** A denied call reaches the model as an execution-denied output, or (through the chat SDK) as that sentence. */
const isDenial = (output: unknown) => {
  const o = output as { type?: string; value?: unknown } | undefined;
  return o?.type === "execution-denied" || (typeof o?.value === "string" && /tool call execution denied/i.test(o.value));
};

function outputValue(output: unknown): JSONValue {
  const o = output as { type?: string; value?: JSONValue } | undefined;
  return o && typeof o === "object" && "value" in o ? (o.value ?? null) : ((output ?? null) as JSONValue);
}

/** The reply to one tool's result: a search's passages answer the question; anything else is named, shortened. */
function fromToolResult(toolName: string, value: JSONValue, question: string, denied = false): string {
  if (denied) return `Offline model: you declined ${toolName}, so I did not do it.`;
  const v = value as { status?: string; message?: string; title?: string; documentId?: string; results?: Partial<SearchHit>[] } | null;
  if (toolName === "save_note" && v?.status === "ok") return `Offline model: I saved your note "${v.title}" to your documents; searches will find it.`;
  if (toolName === "delete_document" && v?.status === "ok") return `Offline model: I deleted document ${v.documentId}.`;
  if (Array.isArray(v?.results)) return answerFromPassages(question, v.results);
  if (v?.status && v.status !== "ok" && typeof v.message === "string") return `Offline model: I could not search your documents. ${v.message}`;
  const json = JSON.stringify(value);
  return `Offline model: ${toolName} returned ${json.length > 300 ? json.slice(0, 297) + "..." : json}.`;
}

/** A passage is read when its search score is at least this share of the best passage's. */
const PASSAGE_SHARE = 0.5;
/** A sentence is quoted when it scores at least this share of the best sentence's, up to MAX_QUOTES of them. */
const SENTENCE_SHARE = 0.5;
const MAX_QUOTES = 3;
// BM25's constants, as the search's own lexical ranking uses them.
const K1 = 1.2;
const B = 0.75;

/**
 * The offline model's answer: the sentences of the passages found that best match the question,
 * quoted and cited by the passage's number in the results ([1] is the first). Passages below a
 * share of the best one's score are not read; sentences are ranked by BM25 over every sentence of
 * every passage found (lower-cased, stop words dropped, suffixes stripped). No sentence sharing a
 * word with the question: it says it found nothing. Pure and deterministic.
 */
export function answerFromPassages(question: string, passages: readonly Partial<SearchHit>[]): string {
  const nothing = `Offline model: I searched your documents for "${question}" and found nothing about it. Add a document that covers it, or set OPENAI_API_KEY to use a real model.`;
  const best = Math.max(0, ...passages.map((p) => p.score ?? 0));
  const seen = new Set<string>();
  const all = passages.flatMap((p, i) =>
    sentences(markdownToText(p.text ?? "")).flatMap((text) => {
      // Chunks repeat their predecessor's last sentences: each sentence counts once, in its first passage.
      const key = text.toLowerCase();
      if (seen.has(key)) return [];
      seen.add(key);
      return [{ text, ref: i + 1, read: (p.score ?? 0) >= best * PASSAGE_SHARE, terms: terms(text) }];
    }),
  );
  const asked = [...new Set(terms(question))];
  if (!asked.length || !all.length) return nothing;
  const avgLength = all.reduce((n, s) => n + s.terms.length, 0) / all.length;
  const df = new Map(asked.map((t) => [t, all.filter((s) => s.terms.includes(t)).length]));
  const scored = all
    .filter((s) => s.read)
    .map((s, order) => {
      const score = asked.reduce((sum, t) => {
        const tf = s.terms.filter((x) => x === t).length;
        if (!tf) return sum;
        const n = df.get(t)!;
        const idf = Math.log(1 + (all.length - n + 0.5) / (n + 0.5));
        return sum + (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * s.terms.length) / avgLength));
      }, 0);
      return { ...s, score, order };
    })
    .filter((s) => s.score > 0);
  if (!scored.length) return nothing;
  const top = Math.max(...scored.map((s) => s.score));
  const quoted = scored
    .filter((s) => s.score >= top * SENTENCE_SHARE)
    .sort((a, b) => b.score - a.score || a.order - b.order)
    .slice(0, MAX_QUOTES)
    .sort((a, b) => a.order - b.order);
  const refs = [...new Set(quoted.map((s) => s.ref))];
  const sources = refs.map((r) => `[${r}] ${passages[r - 1]!.title?.trim() || "Untitled"}`).join(" · ");
  return [`Offline model: your documents say:`, ...quoted.map((s) => `> ${s.text} [${s.ref}]`), `Sources: ${sources}`].join("\n\n");
}

const STOP_WORDS = new Set(
  (
    "a about above after again against all am an and any are as at be because been before being below between both but by can could did do does doing down during each few for from " +
    "further had has have having he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other " +
    "our ours ourselves out over own same she should so some such than that the their theirs them themselves then there these they this those through to too under until up very " +
    "was we were what when where which while who whom why will with would you your yours yourself yourselves many much tell please"
  ).split(" "),
);

/** A text's words as the ranking compares them: lower case, no stop words, common English suffixes stripped. */
function terms(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => !STOP_WORDS.has(w)).map(stem);
}

function stem(w: string): string {
  if (w.length <= 3 || /\d/.test(w)) return w;
  let s = w.replace(/'s$/, "");
  if (s.endsWith("ies") && s.length > 4) s = `${s.slice(0, -3)}y`;
  else if (s.endsWith("sses")) s = s.slice(0, -2);
  else if (s.endsWith("s") && !/(ss|us|is)$/.test(s)) s = s.slice(0, -1);
  for (const suffix of ["ingly", "edly", "ing", "ed", "ly"])
    if (s.endsWith(suffix) && s.length - suffix.length >= 3) {
      s = s.slice(0, -suffix.length);
      break;
    }
  return s.replace(/(.)\1$/, "$1").replace(/e$/, "");
}

function chunk(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [text];
}

const countTokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));
