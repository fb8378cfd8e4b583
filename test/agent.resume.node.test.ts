import type { Connection } from "agents";
import type { UIMessage } from "ai";
import { describe, expect, it } from "vitest";
import { FrameTaps } from "../src/agent/http-stream.ts";
import { catchUp, resumeStream } from "../src/agent/resume.ts";

const messages: UIMessage[] = [{ id: "u1", role: "user", parts: [{ type: "text", text: "hi" }] }];
const client = () => {
  const sent: string[] = [];
  return { sent, connection: { id: "c1", send: (m: string) => void sent.push(m) } as unknown as Connection };
};
const stream = (activeRequestId: string | null, replay: (connection: Connection, requestId: string) => void = () => {}) => ({
  activeRequestId,
  hasActiveStream: () => activeRequestId !== null,
  replayChunks: (connection: Connection, requestId: string) => (replay(connection, requestId), null),
});
const response = (id: string, body: object | undefined, done = false) => JSON.stringify({ type: "cf_agent_use_chat_response", id, body: body && JSON.stringify(body), done });
const read = async (readable: ReadableStream<Uint8Array>) => new Response(readable).text();

describe("a client that comes back over WebSocket", () => {
  it("gets the thread as stored when no turn is streaming, keeping what it queued offline", () => {
    const { sent, connection } = client();
    catchUp(connection, stream(null), messages);
    expect(sent.map((f) => JSON.parse(f))).toEqual([{ type: "cf_agent_chat_messages", messages, connect: true }]);
  });

  it("gets nothing more while a turn streams (the SDK resumes it) or when the thread is empty", () => {
    const { sent, connection } = client();
    catchUp(connection, stream("r1"), messages);
    catchUp(connection, stream(null), []);
    expect(sent).toEqual([]);
  });
});

describe("a client that comes back over HTTP", () => {
  it("gets null when no turn is streaming", () => {
    expect(resumeStream(stream(null), new FrameTaps())).toBeNull();
  });

  it("reads the active turn from its first chunk (replayed) and then live, to its end", async () => {
    const taps = new FrameTaps();
    let replayedTo: string | undefined;
    const resumed = resumeStream(
      stream("r1", (connection, requestId) => {
        replayedTo = requestId;
        connection.send(response(requestId, { type: "text-delta", delta: "Hel" }));
      }),
      taps,
    )!;
    expect(replayedTo).toBe("r1");
    taps.deliver(response("other", { type: "text-delta", delta: "not this turn" }));
    taps.deliver(response("r1", { type: "text-delta", delta: "lo" }));
    taps.deliver(response("r1", undefined, true));
    expect(await read(resumed)).toBe(['data: {"type":"text-delta","delta":"Hel"}', 'data: {"type":"text-delta","delta":"lo"}', "data: [DONE]", ""].join("\n\n"));
  });
});
