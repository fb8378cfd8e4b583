// The chat protocol's client side for the benchmarks: a greeted socket, and one turn on it with its timings.
import { randomUUID } from "node:crypto";

/** A socket the agent has greeted (cf_agent_identity): broadcasts can miss a connection it has not greeted yet. */
export function connectAgent(ws: WebSocket, timeoutMs = 30_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (ws.close(), reject(new Error(`no cf_agent_identity within ${timeoutMs / 1000} s`))), timeoutMs);
    ws.addEventListener("message", function greet(e) {
      if (JSON.parse(String(e.data)).type !== "cf_agent_identity") return;
      clearTimeout(timer);
      ws.removeEventListener("message", greet);
      resolve(ws);
    });
    ws.addEventListener("error", () => (clearTimeout(timer), reject(new Error(`WebSocket to ${(ws.url ?? "").replace(/\?.*/, "")} failed`))), { once: true });
  });
}

/** What a turn's client saw, in performance.now() time. */
export type Marks = { sentAt?: number; firstChunkAt?: number; firstTextAt?: number; doneAt?: number; error?: string; assistantId?: string; reply?: string };

/**
 * Sends one turn on `ws` (open, or opening: then it is sent on open) and resolves when it is done,
 * failed, timed out or the socket closed; `m` gets the times and the reply. `extra` goes into the
 * request body beside the message.
 */
export function sendTurn(
  ws: WebSocket,
  text: string,
  m: Marks,
  o: { timeoutMs: number; extra?: Record<string, unknown>; sent?: (userMessageId: string, at: number) => void; assistant?: (id: string) => void },
): Promise<void> {
  const now = () => performance.now();
  const id = randomUUID();
  const userMessageId = randomUUID();
  return new Promise((resolve) => {
    const finish = (error?: string) => {
      m.doneAt ??= now();
      if (error && !m.error) m.error = error;
      clearTimeout(timer);
      ws.removeEventListener("message", onMessage);
      ws.removeEventListener("close", onClose);
      resolve();
    };
    const onMessage = (e: MessageEvent) => {
      const f = JSON.parse(String(e.data));
      if (f.type === "error") return finish(`error_frame:${f.error?.code ?? "unknown"}`);
      if (f.type !== "cf_agent_use_chat_response" || f.id !== id) return;
      if (f.error) return finish(`chat_error:${f.code ?? String(f.body).slice(0, 60)}`);
      if (f.body) {
        m.firstChunkAt ??= now();
        const chunk = JSON.parse(f.body);
        if (chunk.type === "start" && chunk.messageId) o.assistant?.((m.assistantId = chunk.messageId));
        if (chunk.type === "text-delta") {
          m.firstTextAt ??= now();
          m.reply = (m.reply ?? "") + chunk.delta;
        }
        if (chunk.type === "error") m.error ??= `stream_error:${String(chunk.errorText).slice(0, 60)}`;
      }
      if (f.done) finish(m.firstTextAt === undefined ? "no_text" : undefined);
    };
    const onClose = (e: CloseEvent) => finish(`socket_closed:${e.code}`);
    const timer = setTimeout(() => finish("timeout"), o.timeoutMs);
    ws.addEventListener("message", onMessage);
    ws.addEventListener("close", onClose);
    const message = { id: userMessageId, role: "user", parts: [{ type: "text", text }] };
    const frame = JSON.stringify({
      type: "cf_agent_use_chat_request",
      id,
      init: { method: "POST", body: JSON.stringify({ messages: [message], trigger: "submit-message", ...o.extra }) },
    });
    const send = () => {
      ws.send(frame);
      m.sentAt = now();
      o.sent?.(userMessageId, m.sentAt);
    };
    if (ws.readyState === WebSocket.OPEN) send();
    else ws.addEventListener("open", send, { once: true });
  });
}
