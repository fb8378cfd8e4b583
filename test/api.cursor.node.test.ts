import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "../src/api/cursor.ts";

describe("the thread list's cursor", () => {
  const id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  it("round-trips, and refuses what it did not make: other shapes, dates Postgres cannot hold, ids that are not uuids", () => {
    const c = { createdAt: new Date("2026-12-01T10:00:00.123Z"), id };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    const bad = (v: unknown) => btoa(JSON.stringify(v));
    for (const cursor of [
      "",
      "%%%",
      bad({}),
      bad(["2026-12-01T10:00:00Z", "x"]),
      bad([8.64e15, id]),
      bad(["+275760-09-13T00:00:00.000Z", id]),
      bad(["0001-01-01T00:00:00Z", id]),
      bad(["+010000-01-01T00:00:00Z", id]),
      bad([null, id]),
    ])
      expect(() => decodeCursor(cursor), cursor).toThrow("invalid cursor");
  });
});
