import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { env } from "./support/env.ts";
import type { RecordedRequest } from "./support/fake-openai.ts";
import { eventually, fetchApp, httpTurn, messageRows, postJson, threadsForEachTest, threadAgent } from "./support/helpers.ts";
import { addMcpServer, setThreadFlag, testMcpServer } from "./support/mcp.ts";

const newThread = threadsForEachTest();
const fakeUrl = env.OPENAI_FAKE_URL.replace(/\/v1$/, "");
const modelRequests = async (tag: string) => (await (await fetch(`${fakeUrl}/__requests?contains=${tag}`)).json()) as RecordedRequest[];

type Part = { type: string; state?: string; input?: unknown; output?: Record<string, any> };

/** A turn whose fake model calls `tool` with `args` (test/support/fake-openai.ts): the tool's part and the reply's text. */
async function callTool(threadId: string, apiKey: string, tool: string, args: unknown = {}) {
  const tag = crypto.randomUUID();
  const res = await httpTurn(threadId, `${tag} [call:${tool} ${JSON.stringify(args)}]`, apiKey);
  expect(res.status).toBe(200);
  const [, assistant] = ((await res.json()) as { messages: { parts: Part[] }[] }).messages;
  const parts = assistant!.parts;
  return {
    tag,
    part: parts.find((p) => p.type === `tool-${tool}`),
    text: parts
      .filter((p) => p.type === "text")
      .map((p) => (p as { text?: string }).text)
      .join(""),
  };
}

/** A user's thread with an MCP server `name` on the test MCP server, its tools not waiting for approval (the lead's approvals have tests of their own). */
async function threadWithServer(name = "tst", opts: { token?: string; title?: string } = {}) {
  const t = await newThread(opts.title);
  const mcp = testMcpServer();
  if (opts.token) await mcp.set({ token: opts.token });
  const server = await addMcpServer(t.apiKey, { name, url: mcp.url, ...(opts.token && { token: opts.token }) });
  await setThreadFlag(t.threadId, "approval_mcp_tools", "never");
  return { ...t, mcp, server };
}

const agentStub = (threadId: string) => threadAgent(threadId);

describe("MCP tools in turns", () => {
  it("the model is offered the server's tools, namespaced, calls one, and the result reaches it", async () => {
    const { threadId, apiKey, mcp } = await threadWithServer("tst", { token: "s3cret" });
    const echo = await callTool(threadId, apiKey, "mcp_tst_echo", { text: "hello there" });
    expect(echo.part).toMatchObject({
      state: "output-available",
      input: { text: "hello there" },
      output: { status: "ok", content: [{ type: "text", text: "echo: hello there" }] },
    });
    expect(echo.text).toBe('Tool result: {"status":"ok","content":[{"type":"text","text":"echo: hello there"}]}');
    const [offered] = await modelRequests(echo.tag);
    expect(offered!.tools).toEqual(expect.arrayContaining(["mcp_tst_echo", "mcp_tst_slow", "mcp_tst_fail", "mcp_tst_get_info", "hybrid_search"]));
    // A tool name the model's API would refuse ("get.info") is offered in its characters; the server is called by its own.
    const info = await callTool(threadId, apiKey, "mcp_tst_get_info");
    expect(info.part?.output).toEqual({
      status: "ok",
      content: [{ type: "text", text: '{"server":"threadline-test-mcp"}' }],
      structuredContent: { server: "threadline-test-mcp" },
    });
    expect((await mcp.seen()).calls).toEqual([
      { tool: "echo", args: { text: "hello there" }, authorization: "Bearer s3cret" },
      { tool: "get.info", args: {}, authorization: "Bearer s3cret" },
    ]);
  });

  it("MCP tools wait for the owner's approval by default (flag approval_mcp_tools)", async () => {
    const { threadId, apiKey, mcp } = await threadWithServer();
    await setThreadFlag(threadId, "approval_mcp_tools", "always");
    const held = await callTool(threadId, apiKey, "mcp_tst_echo", { text: "not yet" });
    expect(held.part).toMatchObject({ state: "approval-requested", input: { text: "not yet" } });
    expect((await mcp.seen()).calls).toEqual([]);
    // Approved by the owner, it runs and the turn goes on.
    const approvalId = (held.part as Part & { approval: { id: string } }).approval.id;
    expect((await postJson(`/api/v1/threads/${threadId}/approvals/${approvalId}`, { approved: true }, apiKey)).status).toBe(200);
    expect(
      (
        await eventually(
          () => mcp.seen(),
          (s) => s.calls.length > 0,
        )
      ).calls,
    ).toEqual([{ tool: "echo", args: { text: "not yet" }, authorization: null }]);
    const rows = await eventually(
      () => messageRows(threadId),
      (r) => JSON.stringify(r.at(-1)?.parts ?? []).includes("Tool result"),
    );
    expect(rows.at(-1)!.parts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: "tool-mcp_tst_echo", state: "output-available", output: { status: "ok", content: [{ type: "text", text: "echo: not yet" }] } }),
      ]),
    );
  });

  it("a server that fails, is slow or is down gives the model a result it can read, and the turn still ends well", async () => {
    const { threadId, apiKey, mcp } = await threadWithServer();
    const failed = await callTool(threadId, apiKey, "mcp_tst_fail");
    expect(failed.part?.output).toEqual({ status: "mcp_error", message: "The tool reported an error: the tool failed on purpose" });
    expect(failed.text).toMatch(/^Tool result: \{"status":"mcp_error"/);

    const slow = await callTool(threadId, apiKey, "mcp_tst_slow");
    expect(slow.part?.output).toEqual({ status: "timeout", message: expect.stringMatching(/did not answer within 3000 ms/) });
    // The call was abandoned, not left open: the server saw its client go.
    expect(
      (
        await eventually(
          () => mcp.seen(),
          (s) => s.abandoned === 1,
        )
      ).abandoned,
    ).toBe(1);

    await mcp.set({ mode: "down" });
    const before = (await mcp.seen()).requests;
    const down = await callTool(threadId, apiKey, "mcp_tst_echo", { text: "anyone?" });
    expect(down.part?.output).toEqual({ status: "mcp_unavailable", message: expect.stringMatching(/^The MCP server "tst" could not be reached/) });
    // Transient failures are retried, MCP_RETRIES (2) times, each retry connecting again.
    expect((await mcp.seen()).requests - before).toBe(3);

    // Up again: the next call reconnects.
    await mcp.set({ mode: "up" });
    expect((await callTool(threadId, apiKey, "mcp_tst_echo", { text: "back" })).part?.output).toMatchObject({ status: "ok" });
    expect((await mcp.seen()).calls.map((c) => c.tool)).toEqual(["fail", "slow", "echo"]);
  });

  it("a server down, or hanging (at once, or when asked for its tools), when first added leaves the turn without its tools, and the turn goes on", async () => {
    const { threadId, apiKey } = await newThread();
    const [down, hung, listless] = [testMcpServer(), testMcpServer(), testMcpServer()];
    await down.set({ mode: "down" });
    await hung.set({ mode: "hang" });
    await listless.set({ mode: "hang-list" });
    await addMcpServer(apiKey, { name: "down", url: down.url });
    await addMcpServer(apiKey, { name: "hung", url: hung.url });
    await addMcpServer(apiKey, { name: "listless", url: listless.url });
    const tag = crypto.randomUUID();
    const res = await httpTurn(threadId, `${tag} hello`, apiKey);
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toContain(`Echo: ${tag} hello`);
    const [request] = await modelRequests(tag);
    expect(request!.tools.filter((t) => t.startsWith("mcp_"))).toEqual([]);
    // The requests that ran out of time were given up, not left open in the agent.
    for (const server of [hung, listless])
      expect(
        (
          await eventually(
            () => server.seen(),
            (s) => s.abandoned > 0,
          )
        ).abandoned,
      ).toBeGreaterThan(0);
    // Once up, the next turn connects and offers its tools; a server that let a turn wait is left alone for a while.
    await Promise.all([down.set({ mode: "up" }), hung.set({ mode: "up" })]);
    const again = crypto.randomUUID();
    expect((await httpTurn(threadId, `${again} hello`, apiKey)).status).toBe(200);
    const [next] = await modelRequests(again);
    expect(next!.tools.filter((t) => t.startsWith("mcp_")).sort()).toEqual(["mcp_down_echo", "mcp_down_fail", "mcp_down_get_info", "mcp_down_lookup", "mcp_down_slow"]);
  });

  it("rate-limits MCP tool calls per thread (flag mcp_rate_limit)", async () => {
    const { threadId, apiKey } = await threadWithServer();
    await setThreadFlag(threadId, "mcp_rate_limit", 1);
    expect((await callTool(threadId, apiKey, "mcp_tst_echo", { text: "one" })).part?.output).toMatchObject({ status: "ok" });
    expect((await callTool(threadId, apiKey, "mcp_tst_echo", { text: "two" })).part?.output).toEqual({
      status: "rate_limited",
      retryAfterSeconds: expect.any(Number),
      message: expect.stringMatching(/rate limited on this thread \(1 calls per 60 s\)/),
    });
  });

  it("the connection survives an eviction: the SDK restores it, its token still sealed in the agent's storage", async () => {
    // Titled: the background titling of a thread's first exchange would hold up the eviction.
    const { threadId, apiKey, mcp, server } = await threadWithServer("tst", { token: "kept-token", title: "evicted" });
    expect((await callTool(threadId, apiKey, "mcp_tst_echo", { text: "before" })).part?.output).toMatchObject({ status: "ok" });
    const stub = agentStub(threadId);
    await evictDurableObject(stub);
    const before = (await mcp.seen()).requests;
    await stub.status();
    const restored = await runInDurableObject(stub, async (agent: ThreadAgent, state) => {
      await agent.mcp.waitForConnections({ timeout: 5000 });
      return {
        servers: agent.mcp.listServers().map((s) => s.id),
        state: agent.mcp.mcpConnections[server.id]?.connectionState,
        sealed: await state.storage.get<string>(`tl_mcp_token:${server.id}`),
      };
    });
    expect(restored).toMatchObject({ servers: [server.id], state: "ready", sealed: expect.stringMatching(/^v1\./) });
    expect(restored.sealed).not.toContain("kept-token");
    // Reconnected on waking, before any turn asked.
    expect((await mcp.seen()).requests).toBeGreaterThan(before);
    expect((await callTool(threadId, apiKey, "mcp_tst_echo", { text: "after" })).part?.output).toMatchObject({ status: "ok" });
    expect((await mcp.seen()).calls.map((c) => [c.args, c.authorization])).toEqual([
      [{ text: "before" }, "Bearer kept-token"],
      [{ text: "after" }, "Bearer kept-token"],
    ]);
    // Woken while the server is down: its tools, as it last listed them, are still offered, and say so.
    await mcp.set({ mode: "down" });
    await evictDurableObject(stub);
    const down = await callTool(threadId, apiKey, "mcp_tst_echo", { text: "down" });
    expect(down.part?.output).toMatchObject({ status: "mcp_unavailable" });
  });

  it("a removed server's tools go from the next turn, with its connection and sealed token", async () => {
    const { threadId, apiKey, server } = await threadWithServer("gone", { token: "drop-me" });
    expect((await callTool(threadId, apiKey, "mcp_gone_echo", { text: "x" })).part?.output).toMatchObject({ status: "ok" });
    expect((await fetchApp(`/api/v1/mcp-servers/${server.id}`, { method: "DELETE" }, apiKey)).status).toBe(204);
    const after = await callTool(threadId, apiKey, "mcp_gone_echo", { text: "y" });
    expect(after.part).toBeUndefined();
    expect((await modelRequests(after.tag))[0]!.tools.filter((t) => t.startsWith("mcp_"))).toEqual([]);
    const held = await runInDurableObject(agentStub(threadId), async (agent: ThreadAgent, state) => ({
      servers: agent.mcp.listServers().length,
      sealed: await state.storage.get(`tl_mcp_token:${server.id}`),
    }));
    expect(held).toEqual({ servers: 0, sealed: undefined });
  });

  it("a server registered for one thread is offered on that thread only", async () => {
    const { threadId, apiKey } = await newThread();
    const other = ((await (await postJson("/api/v1/threads", {}, apiKey)).json()) as { thread: { id: string } }).thread.id;
    await addMcpServer(apiKey, { name: "scoped", url: testMcpServer().url, threadId });
    for (const id of [threadId, other]) await setThreadFlag(id, "approval_mcp_tools", "never");
    expect((await callTool(threadId, apiKey, "mcp_scoped_echo", { text: "here" })).part?.output).toMatchObject({ status: "ok" });
    expect((await callTool(other, apiKey, "mcp_scoped_echo", { text: "there" })).part).toBeUndefined();
  });
});
