import { describe, expect, it } from "vitest";
import { ChatClient, eventually, fetchApp, postJson, threadsForEachTest } from "./support/helpers.ts";
import { addMcpServer, testMcpServer } from "./support/mcp.ts";

const newThread = threadsForEachTest();
type Approval = { approvalId: string; toolName: string; input: Record<string, unknown>; status: string };
const pending = async (threadId: string, key: string) =>
  eventually(
    async () => ((await (await fetchApp(`/api/v1/threads/${threadId}/approvals`, {}, key)).json()) as { approvals: Approval[] }).approvals,
    (a) => a.length > 0,
  );
const decide = (threadId: string, approvalId: string, approved: boolean, key: string) => postJson(`/api/v1/threads/${threadId}/approvals/${approvalId}`, { approved }, key);
const search = async (key: string, q: string) =>
  ((await (await fetchApp(`/api/v1/search?q=${encodeURIComponent(q)}&mode=lexical`, {}, key)).json()) as { results: { documentId: string; title: string }[] }).results;

describe("without a key, the offline model shows the tools that act", () => {
  it("asked to remember something it calls save_note, which waits for approval; asked to delete a document it calls delete_document", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const asked = await client.response(client.sendChat("Remember that the office wifi password is tangerine42").requestId);
    expect(asked.chunks.map((c) => c.type)).toContain("tool-approval-request");
    const [note] = await pending(threadId, apiKey);
    expect(note).toMatchObject({ toolName: "save_note", input: { text: "the office wifi password is tangerine42" } });
    expect((await decide(threadId, note!.approvalId, true, apiKey)).status).toBe(200);
    await client.waitFor(() => JSON.stringify(client.frames).includes("I saved your note"));
    const [doc] = await eventually(
      () => search(apiKey, "office wifi password tangerine42"),
      (r) => r.length > 0,
    );

    const del = await client.response(client.sendChat(`Please delete the document ${doc!.documentId}`).requestId);
    expect(del.chunks.map((c) => c.type)).toContain("tool-approval-request");
    const [removal] = await pending(threadId, apiKey);
    expect(removal).toMatchObject({ toolName: "delete_document", input: { documentId: doc!.documentId } });
    expect((await decide(threadId, removal!.approvalId, true, apiKey)).status).toBe(200);
    await client.waitFor(() => JSON.stringify(client.frames).includes(`I deleted document ${doc!.documentId}`));
    expect(
      await eventually(
        () => search(apiKey, "office wifi password tangerine42"),
        (r) => r.length === 0,
      ),
    ).toEqual([]);

    // Declined: it says so, and nothing is saved.
    await client.response(client.sendChat("note: the parking code is 0451").requestId);
    const [declined] = await pending(threadId, apiKey);
    expect((await decide(threadId, declined!.approvalId, false, apiKey)).status).toBe(200);
    await client.waitFor(() => JSON.stringify(client.frames).includes("you declined save_note"));
    expect(await search(apiKey, "parking code 0451")).toEqual([]);
    client.close();
  });

  it("calls an MCP tool whose input takes a text query (after the owner approves it)", async () => {
    const { threadId, apiKey } = await newThread();
    const mcp = testMcpServer();
    await addMcpServer(apiKey, { name: "facts", url: mcp.url });
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(client.sendChat("what is the capital of Portugal?").requestId);
    expect(reply.chunks.map((c) => c.type)).toContain("tool-approval-request");
    const approvals = await pending(threadId, apiKey);
    const lookup = approvals.find((a) => a.toolName === "mcp_facts_lookup")!;
    expect(lookup.input).toEqual({ query: "what is the capital of Portugal?" });
    expect((await decide(threadId, lookup.approvalId, true, apiKey)).status).toBe(200);
    await client.waitFor(() => JSON.stringify(client.frames).includes("facts about: what is the capital of Portugal?"));
    expect((await mcp.seen()).calls).toContainEqual(expect.objectContaining({ tool: "lookup", args: { query: "what is the capital of Portugal?" } }));
    client.close();
  });
});
