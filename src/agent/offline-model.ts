import type {
  JSONValue,
  LanguageModelV4,
  LanguageModelV4CallOptions,
  LanguageModelV4Content,
  LanguageModelV4FunctionTool,
  LanguageModelV4Prompt,
  LanguageModelV4StreamPart,
} from "@ai-sdk/provider";

export const OFFLINE_MODEL_ID = "threadline-offline";

/**
 * A deterministic language model for running without an API key. It speaks the same interface as
 * the OpenAI models, so the agent's code path is unchanged: on a user turn it calls every offered
 * tool that takes a text query, then answers from the tool results, streaming in small chunks.
 */
export class OfflineModel implements LanguageModelV4 {
  readonly specificationVersion = "v4";
  readonly provider = "threadline";
  readonly modelId = OFFLINE_MODEL_ID;
  readonly supportedUrls = {};

  constructor(private readonly chunkDelayMs = 15) {}

  async doGenerate(options: LanguageModelV4CallOptions) {
    const plan = respond(options);
    const content: LanguageModelV4Content[] = plan.toolCalls.length
      ? plan.toolCalls.map((c) => ({ type: "tool-call", ...c }))
      : [{ type: "text", text: plan.text }];
    return { content, finishReason: plan.finishReason, usage: plan.usage, warnings: [] };
  }

  async doStream(options: LanguageModelV4CallOptions) {
    const plan = respond(options);
    const delay = this.chunkDelayMs;
    const parts: LanguageModelV4StreamPart[] = [{ type: "stream-start", warnings: [] }, { type: "response-metadata", modelId: OFFLINE_MODEL_ID }];
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
    toolCalls = tools.flatMap((tool, i) => {
      const input = queryInput(tool, question);
      return input ? [{ toolCallId: `offline-${prompt.length}-${i}`, toolName: tool.name, input: JSON.stringify(input) }] : [];
    });
  }
  if (last?.role === "tool") {
    const results = last.content.flatMap((p) => (p.type === "tool-result" ? [p] : []));
    text = `Offline model: I looked this up for "${question}". ` + results.map((r) => `${r.toolName} returned ${summarize(outputValue(r.output))}.`).join(" ");
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
    if (m.role === "user") return m.content.flatMap((p) => (p.type === "text" ? [p.text] : [])).join(" ").trim();
  }
  return "";
}

const QUERY_KEYS = ["query", "q", "text", "question"];

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

function outputValue(output: unknown): JSONValue {
  const o = output as { type?: string; value?: JSONValue } | undefined;
  return o && typeof o === "object" && "value" in o ? (o.value ?? null) : ((output ?? null) as JSONValue);
}

/** Names what a result holds: the titles of search hits when it has them, otherwise its JSON, shortened. */
function summarize(value: JSONValue): string {
  const results = (value as { results?: { title?: string }[] } | null)?.results;
  if (Array.isArray(results)) {
    if (!results.length) return "no results";
    return `${results.length} result(s): ` + results.map((r, i) => `[${i + 1}] ${r.title ?? "untitled"}`).join(", ");
  }
  const json = JSON.stringify(value);
  return json.length > 300 ? json.slice(0, 297) + "..." : json;
}

function chunk(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [text];
}

const countTokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));
