// `npm run chat -- <threadId>`: a terminal client of a thread agent, speaking the agent chat protocol.
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline/promises";

const [threadId, token = process.env.THREADLINE_TOKEN] = process.argv.slice(2);
const base = (process.env.THREADLINE_URL ?? `http://127.0.0.1:${process.env.PORT ?? "8787"}`).replace(/\/$/, "");
if (!threadId || !token) {
  console.error("usage: npm run chat -- <threadId> <apiKey>   (or THREADLINE_TOKEN; THREADLINE_URL or PORT pick the server)");
  process.exit(2);
}
const agentPath = `/agents/thread-agent/${threadId}`;

type UIMessage = { id: string; role: string; parts: { type: string; text?: string }[] };
const textOf = (m: UIMessage) => m.parts.filter((p) => p.type === "text").map((p) => p.text).join("");

async function history(): Promise<UIMessage[]> {
  const res = await fetch(`${base}${agentPath}/get-messages`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return (await res.json()) as UIMessage[];
}

let messages: UIMessage[];
try {
  messages = await history();
} catch (err) {
  console.error(`cannot open thread ${threadId} at ${base}: ${(err as Error).message}`);
  process.exit(1);
}
for (const m of messages) console.log(`${m.role}> ${textOf(m)}`);

// A ticket, not the key, goes in the WebSocket's URL (URLs end up in logs).
const issued = await fetch(`${base}/api/v1/threads/${threadId}/tickets`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
if (!issued.ok) {
  console.error(`cannot open thread ${threadId}: ${issued.status} ${await issued.text()}`);
  process.exit(1);
}
const { ticket } = (await issued.json()) as { ticket: string };
const ws = new WebSocket(`${base.replace(/^http/, "ws")}${agentPath}?ticket=${encodeURIComponent(ticket)}`);
let pending: { id: string; resolve: () => void } | undefined;
ws.addEventListener("message", (event) => {
  const frame = JSON.parse(String(event.data));
  if (frame.type === "error") console.error(`\n[error] ${frame.error.code}: ${frame.error.message}`);
  if (frame.type !== "cf_agent_use_chat_response" || frame.id !== pending?.id) return;
  if (frame.error) process.stdout.write(`\n[error] ${frame.code ? `${frame.code}: ` : ""}${frame.body}`);
  else if (frame.body) {
    const chunk = JSON.parse(frame.body);
    if (chunk.type === "text-delta") process.stdout.write(chunk.delta);
    if (chunk.type === "tool-input-available") process.stdout.write(`\n[tool ${chunk.toolName} ${JSON.stringify(chunk.input)}]\n`);
  }
  if (frame.done) pending?.resolve();
});
ws.addEventListener("close", (e) => {
  console.error(`\n[connection closed ${e.code}${e.reason ? `: ${e.reason}` : ""}]`);
  process.exit(e.code === 1000 ? 0 : 1);
});
await new Promise((resolve, reject) => {
  ws.addEventListener("open", resolve, { once: true });
  ws.addEventListener("error", () => reject(new Error("WebSocket connection failed")), { once: true });
});

const rl = createInterface({ input: process.stdin, output: process.stdout });
rl.on("close", () => ws.close(1000));
for (;;) {
  const text = (await rl.question("you> ")).trim();
  if (!text) continue;
  const id = randomUUID();
  const message: UIMessage = { id: randomUUID(), role: "user", parts: [{ type: "text", text }] };
  const done = new Promise<void>((resolve) => (pending = { id, resolve }));
  process.stdout.write("assistant> ");
  ws.send(JSON.stringify({ type: "cf_agent_use_chat_request", id, init: { method: "POST", body: JSON.stringify({ messages: [...messages, message], trigger: "submit-message" }) } }));
  await done;
  process.stdout.write("\n");
  messages = await history();
}
