import type { Connection } from "agents";
import { describe, expect, it } from "vitest";
import { FrameTaps } from "../src/agent/http-stream.ts";

const response = (id: string, body: object | undefined, done = false) => JSON.stringify({ type: "cf_agent_use_chat_response", id, body: body && JSON.stringify(body), done });

describe("the server's own frames through the chat protocol", () => {
  it("go in order, from one stand-in connection named for why", async () => {
    const taps = new FrameTaps();
    const seen: { id: string; frame: unknown }[] = [];
    const send = taps.sender(async (connection, message) => {
      await Promise.resolve();
      seen.push({ id: connection.id, frame: JSON.parse(message as string) });
    });
    await send("interact", { type: "a" }, { type: "b" });
    await send("cancel", { type: "c" });
    expect(seen.map((s) => (s.frame as { type: string }).type)).toEqual(["a", "b", "c"]);
    expect(seen[0]!.id).toMatch(/^http:interact:/);
    expect(seen[1]!.id).toBe(seen[0]!.id);
    expect(seen[2]!.id).toMatch(/^http:cancel:/);
  });

  it("what the protocol answers on a stand-in reaches the HTTP streams open for that request", async () => {
    const taps = new FrameTaps();
    const { stream } = taps.open("r1");
    const standIn: Connection = taps.standIn("expire");
    standIn.send(response("r1", { type: "text-delta", delta: "x" }));
    standIn.send(response("r1", undefined, true));
    expect(await new Response(stream).text()).toBe('data: {"type":"text-delta","delta":"x"}\n\ndata: [DONE]\n\n');
    expect(taps.active).toBe(false);
  });
});
