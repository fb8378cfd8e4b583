import { afterEach, describe, expect, it, vi } from "vitest";
import { log } from "../src/observability/log.ts";

afterEach(() => vi.restoreAllMocks());

describe("log levels", () => {
  it("writes each line at its own console level, so a terminal shows a warning as a warning and only an error as an error", () => {
    const seen: [string, string][] = [];
    for (const method of ["debug", "log", "warn", "error"] as const)
      vi.spyOn(console, method).mockImplementation((line: string) => void seen.push([method, JSON.parse(line).level]));
    for (const level of ["debug", "info", "warn", "error"] as const) log(level, "probe");
    expect(seen).toEqual([
      ["debug", "debug"],
      ["log", "info"],
      ["warn", "warn"],
      ["error", "error"],
    ]);
  });
});
