import { useAgentChat } from "@cloudflare/ai-chat/react";
import { useAgent } from "agents/react";
import type { UIMessage } from "ai";
import { Component, Suspense, useEffect, useLayoutEffect, useRef, useState, type Dispatch, type FormEvent, type KeyboardEvent, type ReactNode, type SetStateAction } from "react";
import { api, ApiError, threadTitle, type Thread } from "./api.ts";
import { MessageView } from "./Message.tsx";

type Connection = "connecting" | "open" | "lost";
type TurnError = { code: string; message: string; retryAfter?: number; at: number };
type Agent = Parameters<typeof useAgentChat>[0]["agent"];

/** One thread: its agent's WebSocket (useAgent), opened with a ticket, and the chat over it (useAgentChat). */
type ChatProps = { thread: Thread; apiKey: string; autoFocus: boolean; onRename: (title: string) => Promise<void>; onSignOut: () => void };
type ConversationProps = Pick<ChatProps, "thread" | "autoFocus" | "onRename">;

let openings = 0;

/**
 * useAgent fetches the ticket again on every reconnect, and when its cache entry expires; and because the
 * ticket is part of the socket's URL, an expiry means a new socket. So the entry is kept for the life of
 * this opening of the thread (keyed by `opening`, hence never reused by a later one) instead of a bit under
 * the ticket's minute, which would reconnect, and hide the chat while it waits, every 45 s.
 */
const TICKET_CACHE_MS = 24 * 3600_000;

export function ThreadChat({ thread, apiKey, autoFocus, onRename, onSignOut }: ChatProps) {
  const [connection, setConnection] = useState<Connection>("connecting");
  const [trouble, setTrouble] = useState<string | null>(null);
  const [opening] = useState(() => ++openings);
  const closed = useRef(false);
  useEffect(() => {
    closed.current = false;
    return () => void (closed.current = true);
  }, []);
  // Waits out a network blip, a 5xx or a 429 (the promise stays pending, the chat stays mounted behind the
  // banner); a refusal (401, 404) rejects, for the boundary to explain.
  const ticket = async () => {
    for (let delay = 1000; ; delay = Math.min(delay * 2, 15_000)) {
      try {
        const t = await api.ticket(apiKey, thread.id);
        setTrouble(null);
        return t;
      } catch (err) {
        if (closed.current || !(err instanceof ApiError) || !(err.status === 0 || err.status === 429 || err.status >= 500)) throw err;
        setTrouble(err.status === 0 ? "The server cannot be reached; trying again." : `The server could not open the connection (${err.status}); trying again.`);
        await new Promise((r) => setTimeout(r, err.retryAfter ? err.retryAfter * 1000 : delay));
      }
    }
  };
  // useAgent drops a failed query from its cache, so a first render that suspended on it asks again (and
  // again) rather than throw: once refused, this opening throws at once, which the boundary catches.
  const refused = useRef<unknown>(null);
  const query = () => {
    if (refused.current) throw refused.current;
    return ticket().then(
      (t) => ({ ticket: t }),
      (err: unknown) => {
        refused.current = err;
        throw err;
      },
    );
  };
  return (
    <section className="chat" aria-labelledby="chat-title">
      <header className="chat-header">
        <h2 id="chat-title">{threadTitle(thread)}</h2>
      </header>
      <ThreadBoundary onSignOut={onSignOut} onRetry={() => (refused.current = null)}>
        {/* useAgent suspends while it fetches a ticket: on opening, and on every reconnect. */}
        <Suspense fallback={<ConnectionBanner state={connection === "lost" ? "lost" : "connecting"} trouble={trouble} />}>
          <Connected
            thread={thread}
            apiKey={apiKey}
            opening={opening}
            query={query}
            connection={connection}
            setConnection={setConnection}
            autoFocus={autoFocus}
            onRename={onRename}
          />
        </Suspense>
      </ThreadBoundary>
    </section>
  );
}

type ConnectedProps = ConversationProps & {
  apiKey: string;
  opening: number;
  query: () => Promise<{ ticket: string }>;
  connection: Connection;
  setConnection: Dispatch<SetStateAction<Connection>>;
};

function Connected({ apiKey, opening, query, connection, setConnection, ...rest }: ConnectedProps) {
  const agent = useAgent({
    agent: "thread-agent",
    name: rest.thread.id,
    // Browsers cannot set headers on a WebSocket, so what opens it goes in the URL (and the history request's):
    // a ticket for this thread that expires in a minute, never the API key.
    query,
    queryDeps: [rest.thread.id, apiKey, opening],
    cacheTtl: TICKET_CACHE_MS,
    onOpen: () => setConnection("open"),
    onClose: () => setConnection((c) => (c === "connecting" ? c : "lost")),
  });
  return (
    <>
      <ConnectionBanner state={connection} />
      <Suspense
        fallback={
          <p className="muted loading" role="status">
            Loading messages…
          </p>
        }
      >
        <Conversation agent={agent} connection={connection} {...rest} />
      </Suspense>
    </>
  );
}

/** A ticket the server refuses (or anything else that fails to render) gets a message and a way on, not a blank page. */
class ThreadBoundary extends Component<{ onSignOut: () => void; onRetry: () => void; children: ReactNode }, { error: Error | null }> {
  state = { error: null as Error | null };
  static getDerivedStateFromError(error: unknown) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }
  render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    const status = error instanceof ApiError ? error.status : 0;
    const text =
      status === 401
        ? "Your API key is no longer accepted, so this thread cannot be opened. Sign out, then sign in with a valid key."
        : status === 404
          ? "This thread is not here any more. It may have been deleted in another tab."
          : `This thread could not be opened: ${error.message}`;
    return (
      <div className="empty" role="alert" data-testid="thread-error">
        <p>{text}</p>
        {status === 401 ? (
          <button type="button" className="primary" onClick={this.props.onSignOut}>
            Sign out
          </button>
        ) : (
          status !== 404 && (
            <button type="button" className="primary" onClick={() => (this.props.onRetry(), this.setState({ error: null }))}>
              Try again
            </button>
          )
        )}
      </div>
    );
  }
}

function ConnectionBanner({ state, trouble }: { state: Connection; trouble?: string | null }) {
  if (state === "open") return null;
  return (
    <div className={`banner ${state === "lost" || trouble ? "warn" : "info"}`} role="status" data-testid="connection-banner">
      {state === "lost" ? "Connection lost. Reconnecting… A reply in progress continues where it left off." : "Connecting…"}
      {trouble && ` ${trouble}`}
    </div>
  );
}

function Conversation({ agent, thread, connection, autoFocus, onRename }: ConversationProps & { agent: Agent; connection: Connection }) {
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

  // A reconnect hides the chat (Suspense) while useAgent fetches a ticket, and hiding it takes the focus
  // from the message box: give it back when the chat reappears.
  const boxRef = useRef<HTMLTextAreaElement>(null);
  const refocus = useRef(false);
  useLayoutEffect(() => {
    const box = boxRef.current;
    if (refocus.current) box?.focus({ preventScroll: true });
    return () => void (refocus.current = document.activeElement === box);
  }, []);

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
          ref={boxRef}
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
