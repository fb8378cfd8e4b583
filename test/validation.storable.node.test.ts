import { describe, expect, it } from "vitest";
import { describeUnstorable, findUnstorable, isStorableString, toStorable } from "../src/validation/storable.ts";

const nested = (levels: number, leaf: unknown = "x") => {
  let v: unknown = leaf;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
};

describe("isStorableString", () => {
  it("refuses NUL and lone high and low surrogates, and takes valid pairs and everything else", () => {
    for (const s of ["\0", "a\u0000b", "\ud800", "x\udbff", "\udc00x", "\udfff", "\ude00\ud83d", "\ud83d\ud83d\ude00"]) expect(isStorableString(s), JSON.stringify(s)).toBe(false);
    for (const s of ["", "plain", "\ud83d\ude00", "emoji 😀 mid", "\ufffd", "\uffff", "\u0001\u001f", "é中文"]) expect(isStorableString(s), JSON.stringify(s)).toBe(true);
  });
});

describe("findUnstorable", () => {
  it("names the path of a bad value or key, in document order", () => {
    expect(findUnstorable({ documents: [{ title: "t", metadata: { note: "a\0b" } }] })).toEqual({ path: "documents[0].metadata.note", problem: "character" });
    expect(findUnstorable({ m: { "bad\ud800": 1 } })).toEqual({ path: 'm["bad\\ud800"]', problem: "character" });
    expect(findUnstorable({ m: { "\0": "ok" } })).toEqual({ path: 'm["\\u0000"]', problem: "character" });
    expect(findUnstorable({ a: "\udc00", b: "\0" })?.path).toBe("a");
    expect(findUnstorable(["ok", ["\0"]])?.path).toBe("[1][0]");
    expect(findUnstorable("\0")).toEqual({ path: "", problem: "character" });
    expect(findUnstorable({ "with space": "\0" })?.path).toBe('["with space"]');
  });

  it("passes storable values, valid surrogate pairs included", () => {
    for (const v of [null, 1, true, "", "😀", { "key 😀": ["\ud83d\ude00", { n: 1.5 }] }, [], {}]) expect(findUnstorable(v)).toBeUndefined();
  });

  it("reports nesting beyond maxDepth containers without overflowing the stack, 30,000 levels deep", () => {
    expect(findUnstorable(nested(32), { maxDepth: 32, maxNodes: 1000 })).toBeUndefined();
    expect(findUnstorable(nested(33), { maxDepth: 32, maxNodes: 1000 })).toEqual({ path: Array(32).fill("a").join("."), problem: "depth" });
    const deep = JSON.parse("[".repeat(30_000) + "]".repeat(30_000));
    expect(findUnstorable(deep)).toMatchObject({ problem: "depth" });
    expect(findUnstorable(nested(30_000), { maxDepth: 100_000, maxNodes: 100_000 })).toBeUndefined();
    expect(findUnstorable(nested(30_000, "\0"), { maxDepth: 100_000, maxNodes: 100_000 })).toMatchObject({ problem: "character" });
  });

  it("reports more than maxNodes values", () => {
    expect(findUnstorable(Array(10).fill(0), { maxDepth: 4, maxNodes: 11 })).toBeUndefined();
    expect(findUnstorable(Array(11).fill(0), { maxDepth: 4, maxNodes: 11 })).toEqual({ path: "", problem: "size" });
    expect(findUnstorable({ a: [1, 2], b: [3, 4] }, { maxDepth: 4, maxNodes: 5 })).toMatchObject({ problem: "size" });
  });

  it("says what is wrong and where, without echoing the bad character", () => {
    const message = describeUnstorable(findUnstorable({ m: { "\0": 1 } })!, "body");
    expect(message).toBe('invalid body: text contains a character that cannot be stored (U+0000 or an unpaired surrogate) at m["\\u0000"]');
    expect(isStorableString(message)).toBe(true);
    expect(describeUnstorable({ path: "metadata", problem: "depth" }, "body", { maxDepth: 32, maxNodes: 1 })).toBe("invalid body: nested deeper than 32 levels at metadata");
  });
});

describe("toStorable", () => {
  it("replaces NUL and lone surrogates with U+FFFD in strings and keys, keeping valid pairs", () => {
    expect(toStorable("a\0b\ud800c\udc00\ud83d\ude00")).toBe("a\ufffdb\ufffdc\ufffd\ud83d\ude00");
    const out = toStorable({ keep: { same: "ok" }, text: "x\0", list: ["\udbff", 1, null], "k\0": true });
    expect(out).toEqual({ keep: { same: "ok" }, text: "x\ufffd", list: ["\ufffd", 1, null], "k\ufffd": true });
    expect(findUnstorable(out)).toBeUndefined();
  });

  it("returns the same objects where nothing needed changing", () => {
    const keep = { same: ["ok", { n: 1 }] };
    const value = { keep, text: "😀 valid", n: 1, b: false, nil: null };
    expect(toStorable(value)).toBe(value);
    const changed = toStorable({ keep, bad: "\0" });
    expect(changed.keep).toBe(keep);
    const s = "plain text";
    expect(toStorable(s)).toBe(s);
  });

  it("walks 30,000 levels without overflowing the stack, and leaves cycles and non-plain objects alone", () => {
    const deep = toStorable(nested(30_000, "\0"));
    let leaf: unknown = deep;
    for (let i = 0; i < 30_000; i++) leaf = (leaf as { a: unknown }).a;
    expect(leaf).toBe("\ufffd");
    const cyclic: Record<string, unknown> = { s: "\0" };
    cyclic.self = cyclic;
    const fixed = toStorable(cyclic);
    expect(fixed.s).toBe("\ufffd");
    expect(fixed.self).toBe(cyclic);
    const date = new Date(0);
    expect(toStorable({ date, bad: "\0" }).date).toBe(date);
  });
});
