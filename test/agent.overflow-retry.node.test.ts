import type { UIMessageChunk } from "ai";
import { describe, expect, it } from "vitest";
import { retryOnOverflow } from "../src/agent/overflow.ts";

const streamOf = (chunks: UIMessageChunk[], gate?: Promise<unknown>) =>
  new ReadableStream<UIMessageChunk>({
    async start(c) {
      c.enqueue(chunks[0]!);
      await gate;
      for (const chunk of chunks.slice(1)) c.enqueue(chunk);
      c.close();
    },
  });
const read = async (s: ReadableStream<UIMessageChunk>) => {
  const out: UIMessageChunk[] = [];
  for await (const c of s as unknown as AsyncIterable<UIMessageChunk>) out.push(c);
  return out;
};
const text = (delta: string): UIMessageChunk => ({ type: "text-delta", id: "t", delta });

describe("a reply retried when the provider refuses its context as too long", () => {
  it("sends its start before the model has answered, then the reply as it comes", async () => {
    let answer!: () => void;
    const answered = new Promise<void>((r) => (answer = r));
    const out = retryOnOverflow(streamOf([{ type: "start" }, { type: "start-step" }, text("hi"), { type: "finish" }], answered), new Promise(() => {}), () =>
      Promise.reject(new Error("no retry")),
    );
    const reader = out.getReader();
    // The model has not answered (its verdict never settles here), yet the start is out.
    expect((await reader.read()).value).toEqual({ type: "start" });
    answer();
    const rest: UIMessageChunk[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(r.value);
    expect(rest.map((c) => c.type)).toEqual(["start-step", "text-delta", "finish"]);
  });

  it("refused: the first attempt's error is dropped and the retry follows, without a second start or start-step", async () => {
    let retries = 0;
    const out = retryOnOverflow(streamOf([{ type: "start" }, { type: "start-step" }, { type: "error", errorText: "too long" }]), Promise.resolve("overflow"), async () => {
      retries++;
      return streamOf([
        { type: "start" },
        { type: "data-compaction", data: { messages: 3 } } as UIMessageChunk,
        { type: "start-step" },
        text("short"),
        { type: "finish-step" },
        { type: "finish" },
      ]);
    });
    expect((await read(out)).map((c) => c.type)).toEqual(["start", "start-step", "data-compaction", "text-delta", "finish-step", "finish"]);
    expect(retries).toBe(1);
  });

  it("any other error is the reply's, and a second refusal is not retried again", async () => {
    const other = retryOnOverflow(streamOf([{ type: "start" }, { type: "error", errorText: "server error" }]), Promise.resolve("ok"), () => Promise.reject(new Error("no retry")));
    expect((await read(other)).map((c) => c.type)).toEqual(["start", "error"]);
    const twice = retryOnOverflow(streamOf([{ type: "start" }, { type: "error", errorText: "too long" }]), Promise.resolve("overflow"), async () =>
      streamOf([{ type: "start" }, { type: "error", errorText: "still too long" }]),
    );
    expect(await read(twice)).toEqual([{ type: "start" }, { type: "error", errorText: "still too long" }]);
  });
});
