import { DefaultChatTransport, type UIMessage, type UIMessageChunk } from "ai";
import { describe, expect, it } from "vitest";
import { BASE, fetchApp, messageRows, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();
const drain = async (stream: ReadableStream<UIMessageChunk>) => {
  const chunks: UIMessageChunk[] = [];
  for await (const c of stream as unknown as AsyncIterable<UIMessageChunk>) chunks.push(c);
  return chunks;
};
const transportFor = (apiKey: string) =>
  new DefaultChatTransport({
    api: `${BASE}/api/v1/chat`,
    headers: { authorization: `Bearer ${apiKey}` },
    fetch: ((input: RequestInfo | URL, init?: RequestInit) => fetchApp(String(input).slice(BASE.length), init, null)) as typeof fetch,
  });

describe("approvals over the AI SDK's transport (useChat on /api/v1/chat)", () => {
  it("the answered assistant message continues the turn; sent again, it changes nothing", async () => {
    const { apiKey, threadId } = await newThread();
    const transport = transportFor(apiKey);
    const user: UIMessage = { id: "u-approve-1", role: "user", parts: [{ type: "text", text: "remember: the travel limit is 200 euros" }] };
    const first = await drain(await transport.sendMessages({ chatId: threadId, trigger: "submit-message", messageId: undefined, messages: [user], abortSignal: undefined }));
    const request = first.find((c) => c.type === "tool-approval-request") as { approvalId: string; toolCallId: string } | undefined;
    expect(request).toBeTruthy();
    // What useChat holds once the user approves: the assistant message with its part answered.
    const [, assistant] = await messageRows(threadId);
    const answered = {
      id: assistant!.id,
      role: "assistant" as const,
      parts: (assistant!.parts as Record<string, unknown>[]).map((p) =>
        p.toolCallId === request!.toolCallId ? { ...p, state: "approval-responded", approval: { id: request!.approvalId, approved: true } } : p,
      ),
    } as UIMessage;
    const continued = await drain(
      await transport.sendMessages({ chatId: threadId, trigger: "submit-message", messageId: undefined, messages: [user, answered], abortSignal: undefined }),
    );
    const text = continued.flatMap((c) => (c.type === "text-delta" ? [c.delta] : [])).join("");
    expect(text).toContain("Tool result:");
    expect(text).toMatch(/status.{0,4}ok/);
    const approvals = ((await (await fetchApp(`/api/v1/threads/${threadId}/approvals?status=all`, {}, apiKey)).json()) as { approvals: { status: string }[] }).approvals;
    expect(approvals.map((a) => a.status)).toEqual(["approved"]);
    // A replay of the same answer: history now, nothing waits on it.
    const replay = await fetchApp(
      "/api/v1/chat",
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: threadId, messages: [user, answered], trigger: "submit-message" }) },
      apiKey,
    );
    expect(replay.status).toBe(422);
    const search = (await (await fetchApp(`/api/v1/search?q=travel%20limit%20euros&mode=lexical`, {}, apiKey)).json()) as { results: unknown[] };
    expect(search.results.length).toBeGreaterThan(0);
  });
});
