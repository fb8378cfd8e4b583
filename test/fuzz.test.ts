import { describe, expect, it } from "vitest";
import { ChatClient, eventually, fetchApp, messageRows, threadsForEachTest, threadAgent } from "./support/helpers.ts";
import { rng } from "./support/random.ts";

const newThread = threadsForEachTest();

const SEED = 20261124;

/** encodeURIComponent refuses a lone surrogate: send the bytes a careless client would (an ill-formed UTF-8 sequence) instead. */
const enc = (v: string) => {
  try {
    return encodeURIComponent(v);
  } catch {
    return "%ED%A0%80";
  }
};

function generators(random: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const str = (max = 40) =>
    Array.from({ length: Math.floor(random() * max) }, () =>
      String.fromCharCode(pick([32 + Math.floor(random() * 95), Math.floor(random() * 0xd7ff), 0, 0x202e, 0xfeff, 0xd800, 0xdfff, 0xdbff])),
    ).join("");
  const value = (depth = 0): unknown => {
    const kind = depth > 2 ? pick(["s", "n", "b", "null"]) : pick(["s", "n", "b", "null", "a", "o"]);
    if (kind === "s") return str();
    if (kind === "n") return pick([0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 2 ** 63, -(2 ** 53), 8.64e15, 1e-320, random() * 1000]);
    if (kind === "b") return random() < 0.5;
    if (kind === "null") return null;
    if (kind === "a") return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    return Object.fromEntries(
      Array.from({ length: Math.floor(random() * 4) }, () => [pick(["id", "type", "messages", "parts", "role", "init", "body", str(8)]), value(depth + 1)]),
    );
  };
  const types = [
    "cf_agent_use_chat_request",
    "cf_agent_chat_request_cancel",
    "cf_agent_stream_resume_request",
    "cf_agent_stream_resume_ack",
    "cf_agent_tool_result",
    "cf_agent_tool_approval",
    "cf_agent_chat_messages",
    "cf_agent_state",
    "rpc",
    str(12),
  ];
  const frame = (): string => {
    const r = random();
    if (r < 0.15) return str(200);
    if (r < 0.3) return JSON.stringify(value());
    const type = pick(types);
    const body = pick([str(), JSON.stringify(value()), JSON.stringify({ messages: value(), trigger: pick(["submit-message", "regenerate-message", str(5)]) })]);
    return JSON.stringify({ type, id: pick([str(10), crypto.randomUUID(), 42]), init: pick([{ method: pick(["POST", "GET", str(4)]), body }, value()]), ...(value() as object) });
  };
  /** Deep nesting (past every bound) and dates no database holds, as raw JSON. */
  const deep = () => `${"[".repeat(20_000)}1${"]".repeat(20_000)}`;
  const date = () => pick(["+275760-09-13T00:00:00.000Z", "-271821-04-20T00:00:00.000Z", "0000-00-00", "9999-99-99T99:99:99Z", new Date(8.64e15).toISOString()]);
  return { pick, str, value, frame, deep, date };
}

describe("fuzzing the service", () => {
  it("answers thousands of random frames and requests without a server error, and keeps its data intact", async () => {
    const random = rng(SEED);
    const { pick, str, value, frame, deep, date } = generators(random);
    const a = await newThread("kept");
    const b = await newThread("target");
    const keeper = await ChatClient.connect(a.threadId, a.apiKey);
    await keeper.response(keeper.sendChat("before the storm").requestId);
    keeper.close();
    const kept = await messageRows(a.threadId);

    const sockets = await Promise.all([ChatClient.connect(b.threadId, b.apiKey), ChatClient.connect(b.threadId, b.apiKey)]);
    for (let i = 0; i < 2000; i++) sockets[i % 2]!.send(frame());

    const paths = [
      "/api/v1/users",
      "/api/v1/users/me",
      "/api/v1/users/me/usage",
      "/api/v1/users/me/api-key",
      `/api/v1/users/${b.userId}`,
      "/api/v1/threads",
      "/api/v1/documents",
      "/api/v1/search",
      `/api/v1/threads/${b.threadId}/approvals`,
      `/api/v1/threads/${b.threadId}/tickets`,
      `/api/v1/threads/${b.threadId}`,
      `/api/v1/threads/${b.threadId}/messages`,
      `/api/v1/threads/${b.threadId}/export`,
      `/api/v1/threads/${b.threadId}/status`,
      `/api/v1/threads/${a.threadId}`,
      `/api/v1/threads/${a.threadId}/messages`,
      "/api/v1/chat",
      `/api/v1/chat/${b.threadId}/stream`,
      `/agents/thread-agent/${b.threadId}/get-messages`,
      `/agents/thread-agent/${a.threadId}/get-messages`,
    ];
    const statuses: number[] = [];
    for (let i = 0; i < 600; i++) {
      let path = pick(paths);
      if (random() < 0.3) path = path.replace(/[0-9a-f-]{36}/, pick([crypto.randomUUID(), enc(str(10)), "..%2F..", "%00"]));
      if (random() < 0.3)
        path += `?${pick(["limit", "cursor", "format", "token", "q", "scope", "status"])}=${enc(pick([str(12), date(), btoa(JSON.stringify([date(), crypto.randomUUID()])), "1e400", "-0"]))}`;
      let method = pick(["GET", "POST", "PATCH", "DELETE", "PUT"]);
      // b's thread must outlive the storm: the test ends by recording a message on it.
      if (method === "DELETE" && (path === `/api/v1/threads/${b.threadId}` || path === `/api/v1/users/${b.userId}`)) method = "GET";
      const headers: Record<string, string> = {
        "content-type": pick(["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]),
        accept: pick(["*/*", "application/json", "text/event-stream"]),
      };
      if (path.includes("/api-key")) headers.authorization = "Bearer tl_nope"; // keep b's key valid for the rest of the run
      const body =
        method === "GET"
          ? undefined
          : random() < 0.1
            ? deep()
            : random() < 0.3
              ? str(300)
              : JSON.stringify(
                  random() < 0.5
                    ? value()
                    : {
                        text: str(),
                        title: str(),
                        email: str(),
                        userId: pick([str(), b.userId]),
                        metadata: value(),
                        documents: [{ title: str(), text: str(), metadata: value() }],
                      },
                );
      const res = await fetchApp(path.replace(/ /g, "%20"), { method, headers, body }, pick([b.apiKey, null, "tl_garbage"]));
      statuses.push(res.status);
      if (res.status >= 500) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
      await res.body?.cancel();
    }
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(new Set(statuses).size).toBeGreaterThan(4); // the requests really reached different outcomes

    // Every garbage frame got an answer or was taken by the protocol; no socket was closed as an internal error.
    for (const s of sockets) {
      expect(s.frames.some((f) => f.type === "error")).toBe(true);
      s.close();
    }
    const health = await fetchApp("/health", {}, null);
    expect(health.status).toBe(200);
    expect(await messageRows(a.threadId)).toEqual(kept);
    for (const row of await messageRows(b.threadId)) {
      expect(["user", "assistant"]).toContain(row.role);
      expect(Array.isArray(row.parts)).toBe(true);
    }
    const after = await ChatClient.connect(a.threadId, a.apiKey);
    expect((await after.response(after.sendChat("after the storm").requestId)).text).toBe("Echo: after the storm");
    after.close();
    // The thread that took the storm still records its next message in Postgres: nothing it received stalled its outbox.
    const survivor = await ChatClient.connect(b.threadId, b.apiKey);
    const { requestId, message } = survivor.sendChat("still recording?");
    expect((await survivor.response(requestId)).text).toBe("Echo: still recording?");
    survivor.close();
    const rowsB = await eventually(
      () => messageRows(b.threadId),
      (r) => r.some((x) => x.id === message.id),
    );
    expect(rowsB.map((r) => r.id)).toContain(message.id);
    const { outbox } = await threadAgent(b.threadId).status();
    expect(outbox).toMatchObject({ backlog: 0, quarantined: 0 });
  }, 120_000);

  it("under /agents/, nothing but the two canonical shapes on one's own thread answers 2xx, and nothing answers 5xx", async () => {
    const random = rng(SEED + 1);
    const { pick, str } = generators(random);
    const mine = await newThread("mine");
    const theirs = await newThread("theirs");
    const variants = (id: string) => [id, id.toUpperCase(), id.replace(/-/g, ""), `${id}%2F..`, enc(id), `${id.slice(0, 35)}G`];
    const segments = () =>
      pick([
        () => `thread-agent/${pick(variants(pick([mine.threadId, theirs.threadId])))}`,
        () =>
          `${pick(["user-authority", "outbox-monitor", "turn-limiter", "ThreadAgent", "thread_agent", "sub", str(6)])}/${pick([mine.userId, theirs.threadId, "global", str(8)])}`,
        () => `thread-agent/${mine.threadId}/sub/${pick(["thread-agent", "user-authority", str(5)])}/${pick([theirs.threadId, mine.threadId, str(6)])}`,
        () =>
          `thread-agent/${mine.threadId}${pick(["%2Fsub%2Fthread-agent%2F" + theirs.threadId, "/get-messages/", "//get-messages", "/get-messages/sub/thread-agent/" + theirs.threadId, "/" + str(8), "/./get-messages"])}`,
      ])();
    const sdkHeaders = ["x-cf-agents-subagent-url", "x-agents-lifecycle-props", "x-threadline-principal", "x-cf-agents-" + "x".repeat(3), "x-partykit-room", "upgrade"];
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const path = `/agents/${segments()}${pick(["", "/get-messages"])}`;
      const headers: Record<string, string> = {};
      for (let h = Math.floor(random() * 3); h > 0; h--)
        headers[pick(sdkHeaders)] = pick([
          str(20).replace(/[^\x20-\x7e]/g, "x"),
          `http://threadline.test/agents/thread-agent/${mine.threadId}/sub/thread-agent/${theirs.threadId}`,
          JSON.stringify({ ownerId: theirs.userId, admin: true }),
          "websocket",
          btoa("{}"),
        ]);
      if (random() < 0.4) headers.upgrade = "websocket";
      const query = pick([
        `?token=${mine.apiKey}`,
        `?token=${theirs.apiKey}`,
        "",
        `?token=${enc(str(10))}`,
        `?ticket=tkt_${str(20)}`,
        `?token=${mine.apiKey}&__agents_transport=capnweb`,
      ]);
      const method = pick(["GET", "GET", "POST", "DELETE", "OPTIONS"]);
      const res = await fetchApp(`${path.replace(/ /g, "%20")}${query}`, { method, headers }, null);
      if (res.status >= 500) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
      seen.add(res.status);
      // As the URL parser reads it ("/./" and percent-encoded letters normalise; an encoded slash does not).
      const pathname = new URL(path, "http://x").pathname;
      const shape = /^\/agents\/thread-agent\/([0-9a-f-]{36})(\/get-messages)?$/i.exec(pathname);
      const owner = [mine, theirs].find((t) => t.threadId === shape?.[1]?.toLowerCase());
      if (res.status < 400) {
        // Only the two shapes, with the GET (or upgrade) each takes, and the thread owner's own key.
        expect({ pathname, method, shape: Boolean(shape), ownKey: Boolean(owner && query.includes(owner.apiKey)), upgrade: res.status === 101 }).toMatchObject({
          method: "GET",
          shape: true,
          ownKey: true,
          upgrade: !shape?.[2],
        });
      }
      if (res.status === 101) {
        res.webSocket?.accept();
        res.webSocket?.close();
      } else await res.body?.cancel();
    }
    // The generators reach the open shapes too, so the refusals above are not all there is.
    expect([...seen]).toEqual(expect.arrayContaining([101, 200, 401, 404]));
  }, 120_000);
});
