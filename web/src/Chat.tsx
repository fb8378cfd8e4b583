import { useAgentChat } from "@cloudflare/ai-chat/react";
import { useAgent } from "agents/react";
import type { UIMessage } from "ai";
import { Suspense, useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { threadTitle, type Thread } from "./api.ts";
import { MessageView } from "./Message.tsx";

type Connection = "connecting" | "open" | "lost";
type TurnError = { code: string; message: string; retryAfter?: number; at: number };
type Agent = Parameters<typeof useAgentChat>[0]["agent"];

/** One thread: its agent's WebSocket (useAgent), and the chat over it (useAgentChat). */
type ChatProps = { thread: Thread; apiKey: string; autoFocus: boolean; onRename: (title: string) => Promise<void> };

export function ThreadChat({ thread, apiKey, autoFocus, onRename }: ChatProps) {
  const [connection, setConnection] = useState<Connection>("connecting");
  const agent = useAgent({
    agent: "thread-agent",
    name: thread.id,
    // Browsers cannot set headers on a WebSocket: the key goes in the query, which also reaches the history request.
    query: { token: apiKey },
    onOpen: () => setConnection("open"),
    onClose: () => setConnection((c) => (c === "connecting" ? c : "lost")),
  });
  return (
    <section className="chat" aria-labelledby="chat-title">
      <header className="chat-header">
        <h2 id="chat-title">{threadTitle(thread)}</h2>
      </header>
      <ConnectionBanner state={connection} />
      <Suspense
        fallback={
          <p className="muted loading" role="status">
            Loading messages…
          </p>
        }
      >
        <Conversation agent={agent} thread={thread} connection={connection} autoFocus={autoFocus} onRename={onRename} />
      </Suspense>
    </section>
  );
}

function ConnectionBanner({ state }: { state: Connection }) {
  if (state === "open") return null;
  return (
    <div className={`banner ${state === "lost" ? "warn" : "info"}`} role="status" data-testid="connection-banner">
      {state === "lost" ? "Connection lost. Reconnecting… A reply in progress continues where it left off." : "Connecting…"}
    </div>
  );
}

function Conversation({ agent, thread, connection, autoFocus, onRename }: Omit<ChatProps, "apiKey"> & { agent: Agent; connection: Connection }) {
  // History is the server's: the page never pushes a transcript back (the server refuses it anyway).
  const { messages, sendMessage, stop, status, isStreaming, setMessages, error, clearError } = useAgentChat({ agent, syncMessagesToServer: false });
  const [draft, setDraft] = useState("");
  const [turnError, setTurnError] = useState<TurnError | null>(null);
  const [now, setNow] = useState(() => Date.now());
  const logRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const busy = isStreaming || status === "submitted";

  // Refused turns arrive as error frames carrying a code (and retryAfter for rate limits).
  useEffect(() => {
    const onMessage = (e: MessageEvent) => {
      if (typeof e.data !== "string" || !e.data.includes('"error"')) return;
      let f: { type?: string; error?: unknown; body?: string; code?: string; retryAfter?: number };
      try {
        f = JSON.parse(e.data);
      } catch {
        return;
      }
      if (f.type === "cf_agent_use_chat_response" && f.error === true) {
        setTurnError({ code: f.code ?? "turn_failed", message: f.body || "The reply failed.", retryAfter: f.retryAfter, at: Date.now() });
        if (f.code) unsend();
      } else if (f.type === "error" && f.error && typeof f.error === "object") {
        const err = f.error as { code?: string; message?: string };
        setTurnError({ code: err.code ?? "error", message: err.message ?? "Something went wrong.", at: Date.now() });
      }
    };
    // A refused message never reached the thread: take it off the page and give its text back.
    const unsend = () =>
      setMessages((ms: UIMessage[]) => {
        const last = ms.at(-1);
        if (last?.role !== "user") return ms;
        const text = last.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("");
        setDraft((d) => d || text);
        return ms.slice(0, -1);
      });
    agent.addEventListener("message", onMessage);
    return () => agent.removeEventListener("message", onMessage);
  }, [agent, setMessages]);

  const retryIn = turnError?.retryAfter ? Math.max(0, Math.ceil(turnError.at / 1000 + turnError.retryAfter - now / 1000)) : 0;
  useEffect(() => {
    if (!turnError?.retryAfter) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [turnError]);
  useEffect(() => {
    if (turnError?.code === "rate_limited" && turnError.retryAfter && retryIn === 0) setTurnError(null);
  }, [retryIn, turnError]);

  useLayoutEffect(() => {
    const el = logRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [messages]);

  const send = (e?: FormEvent) => {
    e?.preventDefault();
    const text = draft.trim();
    if (!text || busy || retryIn > 0) return;
    setTurnError(null);
    clearError();
    setDraft("");
    void sendMessage({ text });
    if (!thread.title) void onRename(text.length > 60 ? `${text.slice(0, 57)}…` : text).catch(() => {});
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) send(e);
  };

  const last = messages.at(-1);
  const offline = messages.some((m) => (m.metadata as { offline?: boolean } | undefined)?.offline);
  const waiting = busy && last?.role === "user";

  return (
    <>
      {offline && (
        <p className="offline-note" data-testid="offline-note">
          <span className="badge offline">Offline model</span> Replies come from Threadline's built-in offline model: it searches your documents and lists what it found, without AI. Set
          OPENAI_API_KEY for a real model.
        </p>
      )}
      <div
        className="messages"
        ref={logRef}
        role="log"
        aria-label="Conversation"
        aria-busy={busy}
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
        }}
      >
        {messages.length === 0 && <p className="muted empty-thread">No messages yet. Ask something about your documents.</p>}
        {messages.map((m) => (
          <MessageView key={m.id} message={m} streaming={busy && m === last && m.role === "assistant"} />
        ))}
        {waiting && (
          <p className="typing" aria-hidden="true">
            Threadline is thinking…
          </p>
        )}
      </div>
      <div className="visually-hidden" role="status" aria-live="polite">
        {busy ? "Threadline is replying…" : last?.role === "assistant" ? "Reply finished." : ""}
      </div>
      <TurnErrorBanner
        // A reply that failed while streaming (the model, say) has no error frame, only the stream's error.
        error={turnError ?? (error ? { code: "turn_failed", message: error.message, at: 0 } : null)}
        retryIn={retryIn}
        connection={connection}
        onDismiss={() => (setTurnError(null), clearError())}
      />
      <form className="composer" onSubmit={send}>
        <label htmlFor="composer" className="visually-hidden">
          Message
        </label>
        <textarea
          id="composer"
          rows={2}
          placeholder="Ask about your documents…"
          value={draft}
          maxLength={32000}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKeyDown}
          aria-describedby="composer-hint"
          autoFocus={autoFocus}
        />
        <span id="composer-hint" className="visually-hidden">
          Enter sends, Shift+Enter adds a new line.
        </span>
        {busy ? (
          <button type="button" className="stop" onClick={() => void stop()}>
            Stop
          </button>
        ) : (
          <button type="submit" className="primary" disabled={!draft.trim() || retryIn > 0}>
            Send
          </button>
        )}
      </form>
    </>
  );
}

function TurnErrorBanner({ error, retryIn, connection, onDismiss }: { error: TurnError | null; retryIn: number; connection: Connection; onDismiss: () => void }) {
  if (!error || connection !== "open") return null;
  const text =
    error.code === "rate_limited"
      ? `You are sending messages faster than this server allows.${retryIn > 0 ? ` You can send again in ${retryIn} s.` : ""} Your message was not sent; it is back in the box.`
      : error.code === "token_budget_exhausted"
        ? "Your token budget is spent, so no new replies can start. Ask an administrator for more."
        : `Something went wrong: ${error.message}`;
  return (
    <div className={`banner ${error.code === "rate_limited" ? "warn" : "error"}`} role="alert" data-testid={error.code === "rate_limited" ? "rate-limit-banner" : "error-banner"}>
      <span>{text}</span>
      <button type="button" className="quiet" onClick={onDismiss} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}
