import { APICallError, type UIMessageChunk, wrapLanguageModel } from "ai";
import type { LanguageModelV4 } from "@ai-sdk/provider";

// OpenAI answers 400 with code context_length_exceeded ("This model's maximum context length is ...");
// compatible servers word it their own way (vLLM, llama.cpp, Ollama, Anthropic-style proxies).
const OVERFLOW = /context_length_exceeded|maximum context length|context (window|length)|too many tokens|prompt is too long|exceeds? the (model's )?(context|maximum)/i;

/** Whether a model call failed because its prompt did not fit the model's context window. */
export function isContextOverflow(err: unknown): boolean {
  if (APICallError.isInstance(err)) return (err.statusCode === 400 || err.statusCode === 413) && OVERFLOW.test(`${err.message} ${err.responseBody ?? ""}`);
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause !== undefined && cause !== err && isContextOverflow(cause);
}

/**
 * The model, watched: `first` settles with how its first call began, "ok" once the server answered
 * (streaming) or "overflow" when it refused the prompt as too long; it has settled by the time the
 * refusal reaches the reply's stream as an error chunk (see retryOnOverflow).
 */
export function watchFirstCall(model: LanguageModelV4): { model: LanguageModelV4; first: Promise<"ok" | "overflow"> } {
  let settle!: (v: "ok" | "overflow") => void;
  const first = new Promise<"ok" | "overflow">((r) => (settle = r));
  const watched = wrapLanguageModel({
    model,
    middleware: {
      specificationVersion: "v4",
      wrapStream: async ({ doStream }) => {
        try {
          const r = await doStream();
          settle("ok");
          return r;
        } catch (err) {
          settle(isContextOverflow(err) ? "overflow" : "ok");
          throw err;
        }
      },
    },
  });
  return { model: watched, first };
}

/**
 * The reply's stream, retried once compacted when the provider refuses the first call as too long.
 * Nothing waits for the model (the reply starts at once, as a bare AIChatAgent's does): the refusal
 * is the first attempt's error chunk, which comes after the first call has failed, so its verdict is
 * known then. Refused, that error is dropped and the retry's chunks follow, less the `start` (and a
 * `start-step`) the client already has.
 */
export function retryOnOverflow(
  stream: ReadableStream<UIMessageChunk>,
  first: Promise<"ok" | "overflow">,
  retry: () => Promise<ReadableStream<UIMessageChunk>>,
): ReadableStream<UIMessageChunk> {
  let reader = stream.getReader();
  let retried = false;
  const sent = new Set<string>();
  const skip = new Set<string>();
  return new ReadableStream<UIMessageChunk>({
    async pull(out) {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return out.close();
        if (skip.delete(value.type)) continue;
        // Settled before its error chunk was made: a race against a settled "ok" only reads it.
        if (!retried && value.type === "error" && (await Promise.race([first, Promise.resolve("ok" as const)])) === "overflow") {
          retried = true;
          await reader.cancel().catch(() => {});
          reader = (await retry()).getReader();
          for (const type of ["start", "start-step"]) if (sent.has(type)) skip.add(type);
          continue;
        }
        sent.add(value.type);
        return out.enqueue(value);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
