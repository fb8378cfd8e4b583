import { createServer, type Server, type ServerResponse } from "node:http";
import { offlineEmbedder } from "../../src/search/embeddings.ts";
import { readBody, sendJson } from "./node-http.ts";

/**
 * A local OpenAI-compatible server for tests and benchmarks. It streams both the Responses API and
 * Chat Completions, so the real @ai-sdk/openai client code runs against it. Replies are derived
 * from the request alone, so concurrent tests never share state:
 * - a user message that mentions "time", with a `current_time` tool offered, gets a tool call;
 * - a user message that mentions "search", with a `hybrid_search` tool offered, gets a call searching for the message;
 * - a user message holding "[call:<tool> <JSON arguments>]", with that tool offered, gets a call of it with those arguments;
 * - POST /v1/embeddings answers with the offline embedder's deterministic vectors, but a 500 the first three times a text
 *   containing "[embed-flaky]" is asked (what one embedding call's retries spend); GET /__embeddings?contains=<text> lists the texts of each request that held it;
 * - a request whose last item is a tool result gets "Tool result: <output>";
 * - a user message containing "[fail]" gets a 500, and one containing "[slow]" streams a chunk every 100 ms;
 * - a user message containing "[drop]", or an embedding text containing "[embed-drop]", has its connection closed unanswered the
 *   first time it is asked (what a pooled connection the server closed looks like to its client), then its answer;
 * - a user message containing "[flaky]" gets a 500 the first three times it is asked (what one model call's retries spend), then its answer;
 * - a user message containing "[break]" gets its first words, then (Responses API) an error event;
 * - a user message containing "[late]" gets its first words after 1.5 s (a request the client hangs up on before its end is recorded as `aborted`);
 * - a last user message starting "Summarize the conversation" (a thread's summary) gets "Summary: <n> lines; the last: <line>",
 *   counted in the user message before it (the transcript), and one starting "Write a title" gets a title made of
 *   that message's first "User:" line, in markdown and quotes (slowly, when that line holds "[slow]");
 * - a user message containing "[context-limit:<n>]" gets a 400 context_length_exceeded when the request's input is over n characters;
 * - anything else gets "Echo: <user text>", streamed in 4-character deltas.
 * GET /__requests?contains=<text> lists the requests whose user text contains it, with the model and tools each named.
 * `firstTokenDelayMs` and `chunkDelayMs` simulate a model's latency.
 */
export type FakeOpenAIOptions = { port?: number; firstTokenDelayMs?: number; chunkDelayMs?: number };
export type FakeOpenAI = { url: string; stop: () => Promise<void>; requests: RecordedRequest[] };
export type RecordedRequest = { path: string; userText: string; at: number; model: string; tools: string[]; aborted?: boolean; chars: number };

type Plan =
  | { kind: "text"; text: string; slow?: boolean; late?: boolean; broken?: boolean }
  | { kind: "tool"; name: string; args: string }
  | { kind: "fail" }
  | { kind: "overflow"; chars: number };

export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const requests: RecordedRequest[] = [];
  const record = (r: RecordedRequest) => {
    requests.push(r);
    if (requests.length > 10_000) requests.splice(0, requests.length - 10_000);
  };
  const asked = new Map<string, number>();
  const embedded: string[][] = [];
  const flaky = (c: Conversation): Plan | undefined => {
    if (!c.userText.includes("[flaky]") || c.lastIsToolResult) return undefined;
    const n = (asked.get(c.userText) ?? 0) + 1;
    asked.set(c.userText, n);
    return n <= 3 ? { kind: "fail" } : undefined;
  };
  // The first request holding the text is cut off: true once, for each text.
  const dropped = new Set<string>();
  const dropsFirst = (text: string | undefined) => text !== undefined && !dropped.has(text) && !!dropped.add(text);
  const drops = (c: Conversation) => c.userText.includes("[drop]") && !c.lastIsToolResult && dropsFirst(c.userText);
  const sleep = (ms = 0) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
  const server: Server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://x");
      if (req.method === "GET" && url.pathname === "/__embeddings") {
        const contains = url.searchParams.get("contains") ?? "";
        return sendJson(
          res,
          200,
          embedded.filter((texts) => texts.some((t) => t.includes(contains))),
        );
      }
      if (req.method === "GET" && url.pathname === "/__requests") {
        const contains = url.searchParams.get("contains") ?? "";
        return sendJson(
          res,
          200,
          requests.filter((r) => r.userText.includes(contains)),
        );
      }
      const body = JSON.parse((await readBody(req)) || "{}");
      if (url.pathname.endsWith("/embeddings")) {
        const input: string[] = Array.isArray(body.input) ? body.input : [body.input];
        embedded.push(input);
        if (embedded.length > 10_000) embedded.splice(0, embedded.length - 10_000);
        if (dropsFirst(input.find((t) => t.includes("[embed-drop]")))) return void req.socket.destroy();
        const flakyText = input.find((t) => t.includes("[embed-flaky]"));
        if (flakyText) {
          const n = (asked.get(flakyText) ?? 0) + 1;
          asked.set(flakyText, n);
          if (n <= 3) return sendJson(res, 500, { error: { message: "fake embedder failure", type: "server_error" } });
        }
        const vectors = await offlineEmbedder(body.dimensions ?? 1536).embed(input);
        return sendJson(res, 200, {
          object: "list",
          model: body.model,
          data: vectors.map((embedding, index) => ({ object: "embedding", index, embedding })),
          usage: { prompt_tokens: input.length, total_tokens: input.length },
        });
      }
      if (url.pathname.endsWith("/responses")) {
        const conv = fromResponses(body);
        const rec: RecordedRequest = { path: "/v1/responses", userText: conv.userText, at: Date.now(), model: body.model, tools: conv.tools, chars: conv.chars };
        record(rec);
        res.on("close", () => void (res.writableEnded || (rec.aborted = true)));
        if (drops(conv)) return void req.socket.destroy();
        return streamResponses(res, flaky(conv) ?? plan(conv), body.model, opts, sleep);
      }
      if (url.pathname.endsWith("/chat/completions")) {
        const conv = fromChat(body);
        const rec: RecordedRequest = { path: "/v1/chat/completions", userText: conv.userText, at: Date.now(), model: body.model, tools: conv.tools, chars: conv.chars };
        record(rec);
        res.on("close", () => void (res.writableEnded || (rec.aborted = true)));
        if (drops(conv)) return void req.socket.destroy();
        return streamChat(res, flaky(conv) ?? plan(conv), body.model, opts, sleep);
      }
      sendJson(res, 404, { error: { message: `no route ${url.pathname}` } });
    } catch (err) {
      sendJson(res, 500, { error: { message: String(err) } });
    }
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `chars`: the request's input (messages, system prompt, tools) as JSON, what a context window is measured on. */
type Conversation = { userText: string; lastIsToolResult: boolean; toolOutput: string; tools: string[]; chars: number; earlierUserText: string };

function plan(c: Conversation): Plan {
  if (c.userText.includes("[fail]")) return { kind: "fail" };
  if (c.userText.startsWith("Summarize the conversation")) {
    if (c.earlierUserText.includes("[fail]")) return { kind: "fail" };
    const lines = c.earlierUserText.split("\n").filter((l) => /^(User|Assistant|System): /.test(l));
    return { kind: "text", text: `Summary: ${lines.length} lines; the last: ${(lines.at(-1) ?? "").slice(0, 80)}` };
  }
  if (c.userText.startsWith("Write a title")) {
    if (c.earlierUserText.includes("[fail]")) return { kind: "fail" };
    const words = (/^User: (.*)$/m.exec(c.earlierUserText)?.[1] ?? "").split(/\s+/).slice(0, 4).join(" ");
    return { kind: "text", text: `**Title:** "${words}"\n\nHope this helps!`, slow: c.earlierUserText.includes("[slow]") };
  }
  const limit = /\[context-limit:(\d+)\]/.exec(c.userText);
  if (limit && c.chars > Number(limit[1])) return { kind: "overflow", chars: c.chars };
  // A model can write what Postgres cannot store: a NUL and a lone surrogate.
  if (c.userText.includes("[unstorable]")) return { kind: "text", text: "bad \u0000 and \ud800 here" };
  if (c.lastIsToolResult) return { kind: "text", text: `Tool result: ${c.toolOutput}` };
  const call = /\[call:([\w.-]+)(?: (\{.*\}))?\]/.exec(c.userText);
  if (call && c.tools.includes(call[1]!)) return { kind: "tool", name: call[1]!, args: call[2] ?? "{}" };
  if (c.tools.includes("current_time") && /\btime\b/i.test(c.userText)) return { kind: "tool", name: "current_time", args: "{}" };
  if (c.tools.includes("hybrid_search") && /\bsearch\b/i.test(c.userText)) return { kind: "tool", name: "hybrid_search", args: JSON.stringify({ query: c.userText, limit: 3 }) };
  // "remember: <text>" saves a note; "forget document <uuid>" deletes one; "[client] <tool>" calls a tool the client declared.
  const note = /\bremember:\s*(.+)$/i.exec(c.userText);
  if (note && c.tools.includes("save_note")) return { kind: "tool", name: "save_note", args: JSON.stringify({ title: note[1]!.slice(0, 40), text: note[1] }) };
  const forget = /\bforget document ([0-9a-f-]{36})/i.exec(c.userText);
  if (forget && c.tools.includes("delete_document")) return { kind: "tool", name: "delete_document", args: JSON.stringify({ documentId: forget[1] }) };
  const client = /\[client\] (\w+)/.exec(c.userText);
  if (client && c.tools.includes(client[1]!)) return { kind: "tool", name: client[1]!, args: JSON.stringify({ reason: "asked" }) };
  return { kind: "text", text: `Echo: ${c.userText}`, slow: c.userText.includes("[slow]"), late: c.userText.includes("[late]"), broken: c.userText.includes("[break]") };
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p?.text === "string" ? p.text : "")).join("");
  return "";
}

function fromResponses(body: any): Conversation {
  const input: any[] = Array.isArray(body.input) ? body.input : [{ role: "user", content: body.input }];
  const users = input.filter((i) => i.role === "user");
  const last = input.at(-1);
  return {
    userText: textOf(users.at(-1)?.content),
    earlierUserText: textOf(users.at(-2)?.content),
    lastIsToolResult: last?.type === "function_call_output",
    toolOutput: typeof last?.output === "string" ? last.output : JSON.stringify(last?.output ?? null),
    tools: (body.tools ?? []).map((t: any) => t.name),
    chars: JSON.stringify([body.instructions ?? null, body.input ?? null, body.tools ?? null]).length,
  };
}

function fromChat(body: any): Conversation {
  const msgs: any[] = body.messages ?? [];
  const last = msgs.at(-1);
  return {
    userText: textOf(msgs.filter((m) => m.role === "user").at(-1)?.content),
    earlierUserText: textOf(msgs.filter((m) => m.role === "user").at(-2)?.content),
    lastIsToolResult: last?.role === "tool",
    toolOutput: textOf(last?.content),
    tools: (body.tools ?? []).map((t: any) => t.function?.name),
    chars: JSON.stringify([body.messages ?? null, body.tools ?? null]).length,
  };
}

const pieces = (s: string) => s.match(/[\s\S]{1,4}/g) ?? [""];
const tokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));

function sse(res: ServerResponse) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  return (data: unknown) => res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}

async function streamResponses(res: ServerResponse, p: Plan, model: string, o: FakeOpenAIOptions, sleep: (ms?: number) => Promise<unknown>) {
  if (p.kind === "fail") return sendJson(res, 500, { error: { message: "fake model failure", type: "server_error" } });
  if (p.kind === "overflow") return sendJson(res, 400, overflowError(p.chars));
  const id = `resp_${Math.random().toString(36).slice(2)}`;
  const created_at = Math.floor(Date.now() / 1000);
  const send = sse(res);
  const event = (e: any) => send({ ...e, sequence_number: 0 });
  event({ type: "response.created", response: { id, created_at, model } });
  event({ type: "response.in_progress", response: { id, created_at, model } });
  await sleep(p.kind === "text" && p.late ? 1500 : o.firstTokenDelayMs);
  let out = 0;
  if (p.kind === "tool") {
    const item = { type: "function_call", id: `fc_${id}`, call_id: `call_${id}`, name: p.name, arguments: "" };
    event({ type: "response.output_item.added", output_index: 0, item });
    event({ type: "response.function_call_arguments.delta", item_id: item.id, output_index: 0, delta: p.args });
    event({ type: "response.output_item.done", output_index: 0, item: { ...item, arguments: p.args, status: "completed" } });
    out = tokens(p.args);
  } else {
    const item = { type: "message", id: `msg_${id}`, role: "assistant", status: "in_progress", content: [] };
    event({ type: "response.output_item.added", output_index: 0, item });
    for (const [i, delta] of pieces(p.text).entries()) {
      if (i) await sleep(p.slow ? 100 : o.chunkDelayMs);
      event({ type: "response.output_text.delta", item_id: item.id, output_index: 0, content_index: 0, delta });
      if (p.broken) return void (event({ type: "error", code: "server_error", message: "fake model failure midway", param: null }), res.end());
    }
    event({ type: "response.output_item.done", output_index: 0, item: { ...item, status: "completed", content: [{ type: "output_text", text: p.text, annotations: [] }] } });
    out = tokens(p.text);
  }
  event({ type: "response.completed", response: { id, created_at, model, usage: { input_tokens: 10, output_tokens: out, total_tokens: 10 + out } } });
  res.end();
}

async function streamChat(res: ServerResponse, p: Plan, model: string, o: FakeOpenAIOptions, sleep: (ms?: number) => Promise<unknown>) {
  if (p.kind === "fail") return sendJson(res, 500, { error: { message: "fake model failure", type: "server_error" } });
  if (p.kind === "overflow") return sendJson(res, 400, overflowError(p.chars));
  const id = `chatcmpl_${Math.random().toString(36).slice(2)}`;
  const created = Math.floor(Date.now() / 1000);
  const send = sse(res);
  const chunk = (delta: any, finish_reason: string | null = null) => send({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason }] });
  await sleep(p.kind === "text" && p.late ? 1500 : o.firstTokenDelayMs);
  let out = 0;
  if (p.kind === "tool") {
    chunk({ role: "assistant", tool_calls: [{ index: 0, id: `call_${id}`, type: "function", function: { name: p.name, arguments: "" } }] });
    chunk({ tool_calls: [{ index: 0, function: { arguments: p.args } }] });
    chunk({}, "tool_calls");
    out = tokens(p.args);
  } else {
    for (const [i, piece] of pieces(p.text).entries()) {
      if (i) await sleep(p.slow ? 100 : o.chunkDelayMs);
      chunk(i === 0 ? { role: "assistant", content: piece } : { content: piece });
    }
    chunk({}, "stop");
    out = tokens(p.text);
  }
  send({ id, object: "chat.completion.chunk", created, model, choices: [], usage: { prompt_tokens: 10, completion_tokens: out, total_tokens: 10 + out } });
  send("[DONE]");
  res.end();
}

/** OpenAI's answer to a prompt over the model's window (Chat Completions and Responses alike). */
const overflowError = (chars: number) => ({
  error: {
    message: `This model's maximum context length is exceeded: your messages resulted in ${chars} characters. Please reduce the length of the messages.`,
    type: "invalid_request_error",
    param: "messages",
    code: "context_length_exceeded",
  },
});
