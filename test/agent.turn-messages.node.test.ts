import type { UIMessage } from "ai";
import { describe, expect, it } from "vitest";
import { turnMessages } from "../src/agent/context.ts";

const m = (id: string, role: UIMessage["role"]): UIMessage => ({ id, role, parts: [{ type: "text", text: id }] });
const ids = (messages: UIMessage[]) => messages.map((x) => x.id);

describe("a turn's messages", () => {
  const thread = [m("u1", "user"), m("a1", "assistant"), m("u2", "user"), m("a2", "assistant"), m("u3", "user")];

  it("are the user message and the reply right after it", () => {
    expect(ids(turnMessages(thread, "u1"))).toEqual(["u1", "a1"]);
    expect(ids(turnMessages(thread, "u2"))).toEqual(["u2", "a2"]);
  });

  it("are the user message alone while no reply follows it", () => {
    expect(ids(turnMessages(thread, "u3"))).toEqual(["u3"]);
  });

  it("without an id (a regenerate), are the last user message and its reply", () => {
    expect(ids(turnMessages(thread.slice(0, 4), undefined))).toEqual(["u2", "a2"]);
  });

  it("are none for an id not in the thread, or an empty thread", () => {
    expect(turnMessages(thread, "nope")).toEqual([]);
    expect(turnMessages([], undefined)).toEqual([]);
  });
});
