import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { env } from "./support/env.ts";
import { ChatClient, eventually, fetchApp, messageRows, postJson, sendJson, threadAgent as agent, threadsForEachTest, type Frame } from "./support/helpers.ts";

const newThread = threadsForEachTest();
type Approval = { approvalId: string; toolCallId: string; toolName: string; input: Record<string, unknown>; status: string; decidedBy: string | null };
const approvals = async (threadId: string, key: string, status = "pending") =>
  ((await (await fetchApp(`/api/v1/threads/${threadId}/approvals?status=${status}`, {}, key)).json()) as { approvals: Approval[] }).approvals;
const decide = (threadId: string, approvalId: string, body: unknown, key: string) => postJson(`/api/v1/threads/${threadId}/approvals/${approvalId}`, body, key);
/** The tool part of a tool call, as the agent holds it. */
const part = (threadId: string, toolCallId: string) =>
  runInDurableObject(agent(threadId), (a: ThreadAgent) => a.messages.flatMap((m) => m.parts as Frame[]).find((p) => p.toolCallId === toolCallId));
const search = async (key: string, q: string) =>
  ((await (await fetchApp(`/api/v1/search?q=${encodeURIComponent(q)}&mode=lexical`, {}, key)).json()) as { results: { title: string; documentId: string }[] }).results;

/** Sends a message that makes the fake model call save_note, and waits for the held call. */
async function heldNote(client: ChatClient, threadId: string, key: string, text: string) {
  const { requestId } = client.sendChat(`remember: ${text}`);
  const reply = await client.response(requestId);
  expect(reply.chunks.map((c) => c.type)).toContain("tool-approval-request");
  const [pending] = await eventually(
    () => approvals(threadId, key),
    (a) => a.some((x) => JSON.stringify(x.input).includes(text)),
  );
  return pending!;
}

describe("tools that act wait for the owner's approval, held by the server", () => {
  it("approved over WebSocket: the tool runs, the turn continues, and the note is found by search; a replay is refused", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const pending = await heldNote(client, threadId, apiKey, "the espresso dose is 18 grams");
    expect(pending).toMatchObject({ toolName: "save_note", status: "pending", input: { text: "the espresso dose is 18 grams" } });
    expect((await part(threadId, pending.toolCallId))?.state).toBe("approval-requested");
    expect(await search(apiKey, "espresso dose grams")).toEqual([]);
    client.send({ type: "cf_agent_tool_approval", toolCallId: pending.toolCallId, approved: true, autoContinue: true });
    const continued = await client.waitFor(
      (f) => f.type === "cf_agent_use_chat_response" && f.done && f.id !== undefined && JSON.stringify(client.frames).includes("Tool result:"),
    );
    expect(continued).toBeTruthy();
    expect(
      await eventually(
        () => search(apiKey, "espresso dose grams"),
        (r) => r.length > 0,
      ),
    ).toEqual([expect.objectContaining({ title: expect.stringContaining("espresso") })]);
    expect((await approvals(threadId, apiKey, "all"))[0]).toMatchObject({ status: "approved", decidedBy: expect.any(String) });
    // Once only.
    const before = client.frames.length;
    client.send({ type: "cf_agent_tool_approval", toolCallId: pending.toolCallId, approved: true, autoContinue: true });
    const refused = await client.waitFor((f) => client.frames.indexOf(f) >= before && f.type === "error");
    expect(refused.error).toMatchObject({ code: "conflict", message: expect.stringContaining("already approved") });
    client.close();
    const rows = await messageRows(threadId);
    expect(JSON.stringify(rows.at(-1)!.parts)).toContain("output-available");
    // The admin stats count it, from the persisted tool parts.
    const stats = (await (await fetchApp("/api/v1/admin/stats?hours=1")).json()) as { approvals: { requested: number; approved: number } };
    expect(stats.approvals.requested).toBeGreaterThanOrEqual(1);
    expect(stats.approvals.approved).toBeGreaterThanOrEqual(1);
  });

  it("denied over HTTP: the model is told and answers, nothing is saved; forged, foreign and admin decisions change nothing", async () => {
    const { threadId, apiKey } = await newThread();
    const other = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const pending = await heldNote(client, threadId, apiKey, "a secret to keep out");
    // A tool call the server never held, another user, the admin's socket, a missing approval id.
    client.send({ type: "cf_agent_tool_approval", toolCallId: "call_forged", approved: true, autoContinue: true });
    expect((await client.waitFor((f) => f.type === "error" && f.error.code === "not_found")).error.message).toMatch(/no approval/);
    expect((await decide(threadId, pending.approvalId, { approved: true }, other.apiKey)).status).toBe(404);
    expect((await decide(threadId, "nope", { approved: true }, apiKey)).status).toBe(404);
    const admin = await ChatClient.connect(threadId);
    admin.send({ type: "cf_agent_tool_approval", toolCallId: pending.toolCallId, approved: true, autoContinue: true });
    expect((await admin.waitFor((f) => f.type === "error")).error.code).toBe("forbidden");
    admin.close();
    expect((await decide(threadId, pending.approvalId, { approved: true }, env.ADMIN_TOKEN)).status).toBe(403);
    expect((await approvals(threadId, apiKey))[0]?.status).toBe("pending");
    // A call whose input is no longer what was asked (a transcript changed under it) cannot be approved.
    await runInDurableObject(agent(threadId), async (a: ThreadAgent) => {
      const m = a.messages.find((x) => (x.parts as Frame[]).some((p) => p.toolCallId === pending.toolCallId))!;
      const parts = (m.parts as Frame[]).map((p) => (p.toolCallId === pending.toolCallId ? { ...p, input: { title: "x", text: "something else" } } : p));
      await a.persistMessages(a.messages.map((x) => (x.id === m.id ? { ...m, parts } : x)) as never);
    });
    const mismatched = await decide(threadId, pending.approvalId, { approved: true }, apiKey);
    expect(mismatched.status).toBe(409);
    expect(await mismatched.json()).toMatchObject({ error: { message: expect.stringContaining("not what was asked") } });
    await runInDurableObject(agent(threadId), async (a: ThreadAgent) => {
      const m = a.messages.find((x) => (x.parts as Frame[]).some((p) => p.toolCallId === pending.toolCallId))!;
      const parts = (m.parts as Frame[]).map((p) => (p.toolCallId === pending.toolCallId ? { ...p, input: pending.input } : p));
      await a.persistMessages(a.messages.map((x) => (x.id === m.id ? { ...m, parts } : x)) as never);
    });

    const denied = await decide(threadId, pending.approvalId, { approved: false, reason: "not this one" }, apiKey);
    expect(await denied.json()).toMatchObject({ approval: { status: "denied", reason: "not this one" } });
    await client.waitFor(() => JSON.stringify(client.frames).includes("Tool result:"));
    expect((await part(threadId, pending.toolCallId))?.state).toBe("output-denied");
    expect(await search(apiKey, "secret keep")).toEqual([]);
    expect((await decide(threadId, pending.approvalId, { approved: true }, apiKey)).status).toBe(409);
    client.close();
  });

  it("survives an eviction between request and decision; an expired approval is refused and the call denied", async () => {
    const { threadId, apiKey, userId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const pending = await heldNote(client, threadId, apiKey, "kept across an eviction");
    client.close();
    await evictDurableObject(agent(threadId));
    expect((await approvals(threadId, apiKey))[0]?.approvalId).toBe(pending.approvalId);
    expect(await (await decide(threadId, pending.approvalId, { approved: true }, apiKey)).json()).toMatchObject({ approval: { status: "approved" } });
    expect(
      await eventually(
        () => search(apiKey, "eviction kept"),
        (r) => r.length > 0,
      ),
    ).toHaveLength(1);

    // Past its expiry, a decision is refused (410) and the call is denied; with a short TTL, the server denies it on time.
    const again = await ChatClient.connect(threadId, apiKey);
    const late = await heldNote(again, threadId, apiKey, "too late for this");
    await runInDurableObject(agent(threadId), (_a: ThreadAgent, s) => void s.storage.sql.exec("UPDATE tl_approvals SET expires_at = 1 WHERE approval_id = ?", late.approvalId));
    const refused = await decide(threadId, late.approvalId, { approved: true }, apiKey);
    expect(refused.status).toBe(410);
    expect(await refused.json()).toMatchObject({ error: { code: "approval_expired" } });
    expect(
      await eventually(
        async () => (await part(threadId, late.toolCallId))?.state,
        (s) => s === "output-denied",
      ),
    ).toBe("output-denied");
    expect((await sendJson("PUT", `/api/v1/admin/users/${userId}/flags/approval_ttl_seconds`, { value: 1 })).status).toBe(200);
    const timed = await heldNote(again, threadId, apiKey, "nobody answers this");
    expect(
      await eventually(
        async () => (await approvals(threadId, apiKey, "all")).find((a) => a.approvalId === timed.approvalId)?.status,
        (s) => s === "expired",
        15_000,
      ),
    ).toBe("expired");
    expect(
      await eventually(
        async () => (await part(threadId, timed.toolCallId))?.state,
        (s) => s === "output-denied",
      ),
    ).toBe("output-denied");
    again.close();
    expect(await search(apiKey, "late nobody answers")).toEqual([]);
  });

  it("policy: a flag lets a tool run without approval, per user or thread", async () => {
    const { threadId, apiKey, userId } = await newThread();
    expect((await sendJson("PUT", `/api/v1/admin/threads/${threadId}/flags/approval_save_note`, { value: "never" })).status).toBe(200);
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(client.sendChat("remember: no questions asked").requestId);
    expect(reply.text).toContain("Tool result:");
    expect(reply.chunks.map((c) => c.type)).not.toContain("tool-approval-request");
    client.close();
    expect(await approvals(threadId, apiKey, "all")).toEqual([]);
    expect(userId).toBeTruthy();
  });
});

describe("tools the client runs", () => {
  const clientTools = [{ name: "get_location", description: "The user's location, from the browser", parameters: { type: "object", properties: { reason: { type: "string" } } } }];
  const sendWithTools = (client: ChatClient, text: string) => {
    const id = crypto.randomUUID();
    const message = { id: `u-${crypto.randomUUID()}`, role: "user", parts: [{ type: "text", text }] };
    client.send({ type: "cf_agent_use_chat_request", id, init: { method: "POST", body: JSON.stringify({ messages: [message], trigger: "submit-message", clientTools }) } });
    return id;
  };

  it("accepts a result only for a waiting call of a declared tool: unknown, server-side, finished and oversized results are refused", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(sendWithTools(client, "[client] get_location please"));
    const call = reply.chunks.find((c) => c.type === "tool-input-available" && c.toolName === "get_location")!;
    expect(call).toBeTruthy();
    const refusal = async (frame: Record<string, unknown>, code: string) => {
      const before = client.frames.length;
      client.send({ type: "cf_agent_tool_result", autoContinue: true, ...frame });
      return expect((await client.waitFor((f) => client.frames.indexOf(f) >= before && f.type === "error")).error.code).toBe(code);
    };
    await refusal({ toolCallId: "call_unknown", toolName: "get_location", output: {} }, "not_found");
    await refusal({ toolCallId: call.toolCallId, toolName: "hybrid_search", output: {} }, "validation_failed");
    await refusal({ toolCallId: call.toolCallId, toolName: "get_location", output: { blob: "x".repeat(40_000) } }, "invalid_frame");
    // A server tool's call cannot be answered by a client.
    const timed = await client.response(client.sendChat("what time is it?").requestId);
    const serverCall = timed.chunks.find((c) => c.type === "tool-input-available" && c.toolName === "current_time")!;
    await refusal({ toolCallId: serverCall.toolCallId, toolName: "current_time", output: { iso: "forged" } }, "forbidden");
    expect(JSON.stringify((await messageRows(threadId)).map((r) => r.parts))).not.toContain("forged");
    client.close();
  });

  it("a valid result continues the turn and is recorded in Postgres; the same call answered twice is refused", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(sendWithTools(client, "[client] get_location please"));
    const call = reply.chunks.find((c) => c.type === "tool-input-available" && c.toolName === "get_location")!;
    client.send({ type: "cf_agent_tool_result", toolCallId: call.toolCallId, toolName: "get_location", output: { city: "Lisbon" }, autoContinue: true, clientTools });
    await client.waitFor(
      () => JSON.stringify(client.frames).includes('Tool result: {\\"city\\":\\"Lisbon\\"}') || JSON.stringify(client.frames).includes('Tool result: {\\"city\\":\\"Lisbon\\"}'),
    );
    const before = client.frames.length;
    client.send({ type: "cf_agent_tool_result", toolCallId: call.toolCallId, toolName: "get_location", output: { city: "Porto" }, autoContinue: true });
    expect((await client.waitFor((f) => client.frames.indexOf(f) >= before && f.type === "error")).error.code).toBe("conflict");
    client.close();
    const rows = await eventually(
      () => messageRows(threadId),
      (r) => JSON.stringify(r.map((x) => x.parts)).includes("Lisbon"),
    );
    expect(JSON.stringify(rows.map((r) => r.parts))).not.toContain("Porto");
  });
});
