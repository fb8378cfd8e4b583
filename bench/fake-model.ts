// The fake model of bench/turns.ts: test/support/fake-openai.ts behind a small rewriting proxy.
// The fake answers a tool result with "Tool result: <the whole output>", streamed 4 characters a
// chunk; hybrid_search's output (three passages, ~2,500 characters) would make every reply ~6 s of
// chunks. The proxy replaces a tool result with a digest of it (status, passage count, first
// title) before the fake sees it, so the reply is short, and the same for any system whose search
// finds the same passages. Everything else (the tool-call trigger, delays, embeddings) is the fake's.
import { createServer, request, type IncomingMessage } from "node:http";
import { startFakeOpenAI, type FakeOpenAIOptions, type RecordedRequest } from "../test/support/fake-openai.ts";

/** `requests`: the model requests the fake received (at: Date.now()), for the turns' breakdown. */
export type FakeModel = { url: string; requests: RecordedRequest[]; stop: () => Promise<void> };

const digest = (output: unknown): string => {
  try {
    const o = (typeof output === "string" ? JSON.parse(output) : output) as { status?: string; results?: { title?: string }[] };
    return `${o.status ?? "?"}, ${o.results?.length ?? 0} passages, first: ${o.results?.[0]?.title ?? "none"}`;
  } catch {
    return "unreadable";
  }
};

/** Tool results in a Chat Completions or Responses request body, replaced by their digest. */
function rewrite(body: any) {
  for (const m of body.messages ?? []) if (m.role === "tool") m.content = digest(typeof m.content === "string" ? m.content : m.content?.map((p: any) => p.text ?? "").join(""));
  for (const i of Array.isArray(body.input) ? body.input : []) if (i.type === "function_call_output") i.output = digest(i.output);
  return body;
}

const read = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req
      .on("data", (c) => (data += c))
      .on("end", () => resolve(data))
      .on("error", reject);
  });

export async function startFakeModel(opts: FakeOpenAIOptions): Promise<FakeModel> {
  const fake = await startFakeOpenAI(opts);
  const target = new URL(fake.url);
  const server = createServer(async (req, res) => {
    try {
      const raw = await read(req);
      const body = req.method === "POST" && /\/(chat\/completions|responses)$/.test(req.url ?? "") ? JSON.stringify(rewrite(JSON.parse(raw))) : raw;
      const up = request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host, "content-length": Buffer.byteLength(body) } },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", (err) => (res.headersSent ? res.destroy() : res.writeHead(502).end(String(err))));
      up.end(body);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests: fake.requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await fake.stop();
    },
  };
}
