import { describe, expect, it } from "vitest";
import { Owner } from "../src/agent/owner.ts";
import { AppError } from "../src/errors.ts";

const store = (entries: Record<string, unknown> = {}) => {
  const map = new Map(Object.entries(entries));
  return {
    map,
    reads: 0,
    async get<T>(key: string) {
      this.reads++;
      return map.get(key) as T | undefined;
    },
    put: async (key: string, value: unknown) => void map.set(key, value),
  };
};

describe("a thread's owner", () => {
  it("is the first claim, kept in storage; a later claim does not change it", async () => {
    const storage = store();
    const owner = new Owner({ storage, recorded: () => Promise.reject(new Error("no read of the record")) });
    expect(owner.known).toBeUndefined();
    expect(await owner.claim("u1")).toBe("u1");
    expect(await owner.claim("u2")).toBe("u1");
    expect(await owner.id()).toBe("u1");
    expect(storage.map.get("tl_owner")).toBe("u1");
    expect(owner.known).toBe("u1");
    // A new instance over the same storage (the agent woken again) keeps it.
    expect(await new Owner({ storage, recorded: async () => "u3" }).claim("u3")).toBe("u1");
  });

  it("is read from the thread's record once when storage has none, then kept", async () => {
    const storage = store();
    let reads = 0;
    const owner = new Owner({ storage, recorded: async () => (reads++, "u1") });
    expect(await owner.id()).toBe("u1");
    expect(await owner.id()).toBe("u1");
    expect(reads).toBe(1);
    expect(storage.map.get("tl_owner")).toBe("u1");
  });

  it("reads storage once per instance, not on every call", async () => {
    const storage = store({ tl_owner: "u1" });
    const owner = new Owner({ storage, recorded: async () => "other" });
    for (let i = 0; i < 3; i++) expect(await owner.id()).toBe("u1");
    expect(storage.reads).toBe(1);
  });

  it("is thread_not_found when neither storage nor Postgres knows the thread", async () => {
    const owner = new Owner({ storage: store(), recorded: async () => undefined });
    const err = await owner.id().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("thread_not_found");
    expect(owner.known).toBeUndefined();
  });
});
