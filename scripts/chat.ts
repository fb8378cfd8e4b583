// `npm run chat -- <threadId> [apiKey]`: a terminal client of a thread agent, speaking the agent chat
// protocol. It shows the thread, your turns, and turns made elsewhere (another tab, HTTP) as they
// stream. The key comes from THREADLINE_TOKEN, the command line, or a prompt that does not echo it.
import { randomUUID } from "node:crypto";
import { createInterface, type Interface } from "node:readline";

const [threadId, keyArg] = process.argv.slice(2);
const base = (process.env.THREADLINE_URL ?? `http://127.0.0.1:${process.env.PORT ?? "8787"}`).replace(/\/$/, "");
if (!threadId) {
  console.error("usage: npm run chat -- <threadId> [apiKey]   (or THREADLINE_TOKEN, or type the key when asked; THREADLINE_URL or PORT pick the server)");
  process.exit(2);
}
const token = keyArg ?? process.env.THREADLINE_TOKEN ?? (await askHidden("API key: "));
if (!token) {
  console.error("no API key: pass it, set THREADLINE_TOKEN, or type it when asked (a terminal is needed for that)");
  process.exit(2);
}
const agentPath = `/agents/thread-agent/${threadId}`;

type UIMessage = { id: string; role: string; parts: { type: string; text?: string }[]; metadata?: { offline?: boolean; outcome?: string; error?: string } };
const textOf = (m: UIMessage) =>
  m.parts
    .filter((p) => p.type === "text")
    .map((p) => p.text)
    .join("");

/** Reads a line from the terminal without showing what is typed. */
function askHidden(prompt: string): Promise<string | undefined> {
  if (!process.stdin.isTTY) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const mute = rl as unknown as { _writeToOutput: (s: string) => void };
    process.stdout.write(prompt);
    mute._writeToOutput = () => {};
    rl.question("", (answer) => {
      rl.close();
      process.stdout.write("\n");
      resolve(answer.trim() || undefined);
    });
  });
}

const auth = { authorization: `Bearer ${token}` };
const fail = (what: string, detail: string) => {
  console.error(`cannot ${what} thread ${threadId} at ${base}: ${detail}`);
  process.exit(1);
};
const history = await fetch(`${base}${agentPath}/get-messages`, { headers: auth }).catch((err: Error) => fail("reach", err.message));
if (!history.ok) fail("open", `${history.status} ${await history.text()}`);
const known = new Set<string>();
for (const m of (await history.json()) as UIMessage[]) {
  known.add(m.id);
  console.log(`${m.role}> ${textOf(m)}${m.metadata?.outcome === "stopped" ? " [stopped]" : m.metadata?.outcome === "error" ? ` [failed: ${m.metadata.error}]` : ""}`);
}

// A ticket, not the key, goes in the WebSocket's URL (URLs end up in logs).
const issued = await fetch(`${base}/api/v1/threads/${threadId}/tickets`, { method: "POST", headers: auth });
if (!issued.ok) fail("open", `${issued.status} ${await issued.text()}`);
const { ticket } = (await issued.json()) as { ticket: string };
const ws = new WebSocket(`${base.replace(/^http/, "ws")}${agentPath}?ticket=${encodeURIComponent(ticket)}`);

let rl: Interface | undefined;
let mine: { id: string; done: () => void } | undefined;
/** Replies streaming now (this client's, or another's), by request id: whether their header is printed. */
const streaming = new Map<string, boolean>();
const out = (s: string) => process.stdout.write(s);

ws.addEventListener("message", (event) => {
  const frame = JSON.parse(String(event.data));
  if (frame.type === "error") return void console.error(`\n[error] ${frame.error.code}: ${frame.error.message}`);
  if (frame.type === "cf_agent_chat_messages") {
    // A message sent from somewhere else (another tab, an HTTP call): shown as it arrives.
    for (const m of frame.messages as UIMessage[]) {
      if (known.has(m.id)) continue;
      known.add(m.id);
      if (m.role === "user") out(`\n[elsewhere] you> ${textOf(m)}\n`);
    }
    return;
  }
  if (frame.type !== "cf_agent_use_chat_response") return;
  const own = frame.id === mine?.id;
  if (!streaming.has(frame.id)) streaming.set(frame.id, false);
  const header = () => {
    if (streaming.get(frame.id)) return;
    streaming.set(frame.id, true);
    out(own ? "assistant> " : "\n[elsewhere] assistant> ");
  };
  if (frame.error) {
    header();
    out(`[error] ${frame.code ? `${frame.code}: ` : ""}${frame.body}`);
  } else if (frame.body) {
    const chunk = JSON.parse(frame.body);
    if (chunk.type === "text-delta") header(), out(chunk.delta);
    if (chunk.type === "tool-input-available") header(), out(`[tool ${chunk.toolName} ${JSON.stringify(chunk.input)}] `);
  }
  if (frame.done) {
    if (frame.outcome === "aborted") out(" [stopped]");
    streaming.delete(frame.id);
    out("\n");
    if (own) mine!.done();
    else if (!mine) rl?.prompt(true);
  }
});
ws.addEventListener("close", (e) => {
  console.error(`\n[connection closed ${e.code}${e.reason ? `: ${e.reason}` : ""}]`);
  process.exit(e.code === 1000 ? 0 : 1);
});
await new Promise((resolve, reject) => {
  ws.addEventListener("open", resolve, { once: true });
  ws.addEventListener("error", () => reject(new Error("WebSocket connection failed")), { once: true });
});

rl = createInterface({ input: process.stdin, output: process.stdout, prompt: "you> " });
// Lines are taken one at a time: each waits for its reply. At the end of input (Ctrl-D, or a piped
// file), the reply still coming is waited for before the connection closes.
const queue: string[] = [];
let ended = false;
let running = false;
async function next() {
  if (running) return;
  running = true;
  for (let text = queue.shift(); text !== undefined; text = queue.shift()) {
    const id = randomUUID();
    const message: UIMessage = { id: randomUUID(), role: "user", parts: [{ type: "text", text }] };
    known.add(message.id);
    await new Promise<void>((done) => {
      mine = { id, done };
      // The server keeps only the new message: the history it holds is the thread's.
      ws.send(JSON.stringify({ type: "cf_agent_use_chat_request", id, init: { method: "POST", body: JSON.stringify({ messages: [message], trigger: "submit-message" }) } }));
    });
    mine = undefined;
  }
  running = false;
  if (ended) ws.close(1000);
  else rl!.prompt();
}
rl.on("line", (line) => {
  const text = line.trim();
  if (!text) return void (running || rl!.prompt());
  queue.push(text);
  void next();
});
rl.on("close", () => {
  ended = true;
  if (!running) ws.close(1000);
});
rl.prompt();
