import { useAgentChat } from "@cloudflare/ai-chat/react";
import { useAgent } from "agents/react";
import type { UIMessage } from "ai";
import {
  Component,
  Suspense,
  useCallback,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  type Dispatch,
  type FormEvent,
  type KeyboardEvent,
  type ReactNode,
  type SetStateAction,
} from "react";
import { api, ApiError, threadTitle, type ApprovalInfo, type DocumentInfo, type McpServer, type Thread } from "./api.ts";
import { SendIcon, StopIcon } from "./Icons.tsx";
import { FailedNote, MessageView, preloadMarkdown, ToolContext } from "./Message.tsx";

import type { AssistantMetadata } from "../../src/messages.ts";

type Connection = "connecting" | "open" | "lost" | "deleted";
/** A turn the server refused (rate limit, budget, ...): `until` is when a rate-limited send may go again. */
type Refusal = { code: string; message: string; until?: number };
type Agent = Parameters<typeof useAgentChat>[0]["agent"];

/** One thread: its agent's WebSocket (useAgent), opened with a ticket, and the chat over it (useAgentChat). */
type ChatProps = {
  thread: Thread;
  apiKey: string;
  autoFocus: boolean;
  /** Sent as soon as the thread is open: the first message of a thread made from the first screen. */
  firstMessage?: string;
  /** A message to scroll to once the history is in (a search result). */
  focusMessageId?: string;
  suggestions: string[];
  /** Names for the ids tool calls carry: documents a call would delete, the MCP servers in tool names. */
  documents: DocumentInfo[];
  servers: McpServer[];
  onTitle: (title: string) => void;
  onSignOut: () => void;
};
type ConversationProps = Omit<ChatProps, "onSignOut">;

let openings = 0;
/** First messages already sent, so a remount (React's StrictMode, a reconnect) never sends one twice. */
const sentFirst = new Set<string>();

/**
 * useAgent fetches the ticket again on every reconnect, and when its cache entry expires; and because the
 * ticket is part of the socket's URL, an expiry means a new socket. So the entry is kept for the life of
 * this opening of the thread (keyed by `opening`, hence never reused by a later one) instead of a bit under
 * the ticket's minute, which would reconnect, and hide the chat while it waits, every 45 s.
 */
const TICKET_CACHE_MS = 24 * 3600_000;

export function ThreadChat({ thread, apiKey, onSignOut, ...rest }: ChatProps) {
  const [connection, setConnection] = useState<Connection>("connecting");
  const [trouble, setTrouble] = useState<string | null>(null);
  const [opening] = useState(() => ++openings);
  const closed = useRef(false);
  useEffect(() => {
    closed.current = false;
    preloadMarkdown();
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
      {connection === "deleted" ? (
        <div className="empty" role="alert" data-testid="thread-error">
          <p>This thread was deleted (in another tab, perhaps).</p>
        </div>
      ) : (
        <ThreadBoundary onSignOut={onSignOut} onRetry={() => (refused.current = null)}>
          {/* useAgent suspends while it fetches a ticket: on opening, and on every reconnect. */}
          <Suspense fallback={<ConnectionBanner state={connection === "lost" ? "lost" : "connecting"} trouble={trouble} />}>
            <Connected thread={thread} apiKey={apiKey} opening={opening} query={query} connection={connection} setConnection={setConnection} {...rest} />
          </Suspense>
        </ThreadBoundary>
      )}
    </section>
  );
}

type ConnectedProps = ConversationProps & {
  opening: number;
  query: () => Promise<{ ticket: string }>;
  connection: Connection;
  setConnection: Dispatch<SetStateAction<Connection>>;
};

function Connected({ opening, query, connection, setConnection, ...rest }: ConnectedProps) {
  const agent = useAgent({
    agent: "thread-agent",
    name: rest.thread.id,
    // Browsers cannot set headers on a WebSocket, so what opens it goes in the URL (and the history request's):
    // a ticket for this thread that expires in a minute, never the API key.
    query,
    queryDeps: [rest.thread.id, rest.apiKey, opening],
    cacheTtl: TICKET_CACHE_MS,
    onOpen: () => setConnection("open"),
    // 4404: the thread was deleted while open here; the server closed every socket on it.
    onClose: (e: CloseEvent) => setConnection((c) => (e.code === 4404 ? "deleted" : c === "connecting" ? c : "lost")),
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
  if (state === "open" || state === "deleted") return null;
  return (
    <div className={`banner ${state === "lost" || trouble ? "warn" : "info"}`} role="status" data-testid="connection-banner">
      {state === "lost" ? "Connection lost. Reconnecting… A reply in progress continues where it left off." : "Connecting…"}
      {trouble && ` ${trouble}`}
    </div>
  );
}

function Conversation({
  agent,
  apiKey,
  thread,
  connection,
  autoFocus,
  firstMessage,
  focusMessageId,
  suggestions,
  documents,
  servers,
  onTitle,
}: ConversationProps & { agent: Agent; connection: Connection }) {
  const [draft, setDraft] = useState("");
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const [now, setNow] = useState(() => Date.now());
  /** Refusals by request id, as their frames arrive, until useAgentChat reports the turn ended (onTurnEnd). */
  const refusals = useRef(new Map<string, Refusal>());
  /** Turns useAgentChat reported ended, with the user messages they carried, until their refusal frame is read. */
  const ended = useRef(new Map<string, string[]>());
  const settle = useRef((_requestId: string, _messageIds: string[]) => {});
  const lastSent = useRef("");
  // History is the server's: the page never pushes a transcript back (the server refuses it anyway).
  const { messages, sendMessage, regenerate, stop, status, isStreaming, setMessages, error, clearError, addToolApprovalResponse } = useAgentChat({
    agent,
    syncMessagesToServer: false,
    // A refused send never reached the thread: its messages (by the ids the refusal names) leave the page, their text goes back in the box.
    onTurnEnd: ({ requestId, messageIds, outcome }) => {
      if (outcome !== "error") return;
      if (refusals.current.has(requestId)) settle.current(requestId, messageIds ?? []);
      else ended.current.set(requestId, messageIds ?? []);
    },
  });
  // Whichever comes second, the turn's end or its refusal frame, settles it: the banner says why (the turn's
  // error is not also a failed reply), and the messages leave the page.
  settle.current = (requestId, messageIds) => {
    refusals.current.delete(requestId);
    ended.current.delete(requestId);
    clearError();
    // The text of the send (sends wait for each other): the message may already be gone, replaced by the server's copy of the thread.
    const text = lastSent.current;
    setDraft((d) => d || text);
    if (messageIds.length) setMessages((ms: UIMessage[]) => ms.filter((m) => !messageIds.includes(m.id)));
  };
  const logRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const busy = isStreaming || status === "submitted";

  // The server's record of the thread's approvals says what the transcript does not: when a pending one
  // expires, and whether a denied call was declined or expired. Asked again whenever an approval changes.
  const [approvals, setApprovals] = useState(() => new Map<string, ApprovalInfo>());
  const held = messages.flatMap((m) => m.parts.flatMap((p) => ("approval" in p && p.approval ? [`${p.approval.id}:${p.state}`] : []))).join();
  useEffect(() => {
    if (!held) return;
    let live = true;
    api.approvals(apiKey, thread.id).then(
      (list) => live && setApprovals(new Map(list.map((a) => [a.approvalId, a]))),
      () => {},
    );
    return () => void (live = false);
  }, [held, busy, apiKey, thread.id]);
  const decideRef = useRef(addToolApprovalResponse);
  decideRef.current = addToolApprovalResponse;
  const decide = useCallback((id: string, approved: boolean) => {
    stick.current = true;
    void decideRef.current({ id, approved });
  }, []);
  const open = connection === "open";
  const tools = useMemo(() => ({ decide: open ? decide : undefined, approvals, documents, servers }), [open, decide, approvals, documents, servers]);

  // Frames useAgentChat does not surface: a refusal's code and wait, and the thread's new title.
  useEffect(() => {
    const onMessage = (e: MessageEvent) => {
      if (typeof e.data !== "string" || !(e.data.includes('"error"') || e.data.includes('"thread_title"'))) return;
      let f: { type?: string; id?: string; error?: unknown; body?: string; code?: string; retryAfter?: number; threadId?: string; title?: string };
      try {
        f = JSON.parse(e.data);
      } catch {
        return;
      }
      if (f.type === "thread_title" && f.threadId === thread.id && f.title) return onTitle(f.title);
      const at = Date.now();
      if (f.type === "cf_agent_use_chat_response" && f.error === true && f.code && f.id) {
        const r = { code: f.code, message: f.body || "The message was refused.", until: f.retryAfter ? at + f.retryAfter * 1000 : undefined };
        refusals.current.set(f.id, r);
        setNow(at);
        setRefusal(r);
        const messageIds = ended.current.get(f.id);
        if (messageIds) settle.current(f.id, messageIds);
      } else if (f.type === "error" && f.error && typeof f.error === "object") {
        const err = f.error as { code?: string; message?: string };
        setRefusal({ code: err.code ?? "error", message: err.message ?? "Something went wrong." });
      }
    };
    agent.addEventListener("message", onMessage);
    return () => agent.removeEventListener("message", onMessage);
  }, [agent, thread.id, onTitle]);

  const retryIn = refusal?.until ? Math.max(0, Math.ceil((refusal.until - now) / 1000)) : 0;
  useEffect(() => {
    if (!refusal?.until) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [refusal]);
  useEffect(() => {
    if (refusal?.code === "rate_limited" && refusal.until && retryIn === 0) setRefusal(null);
  }, [retryIn, refusal]);

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

  // A search result opens the thread at its message.
  const focused = useRef<string | null>(null);
  useEffect(() => {
    if (!focusMessageId || focused.current === focusMessageId) return;
    const el = logRef.current?.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(focusMessageId)}"]`);
    if (!el) return;
    focused.current = focusMessageId;
    stick.current = false;
    el.scrollIntoView({ block: "center" });
    el.classList.add("found");
  }, [focusMessageId, messages]);

  const submit = (text: string) => {
    if (!text || busy || retryIn > 0) return;
    setRefusal(null);
    clearError();
    stick.current = true;
    lastSent.current = text;
    void sendMessage({ text });
  };
  useEffect(() => {
    if (!firstMessage || connection !== "open" || status !== "ready" || busy || sentFirst.has(thread.id)) return;
    sentFirst.add(thread.id);
    submit(firstMessage);
  });
  const send = (e?: FormEvent) => {
    e?.preventDefault();
    const text = draft.trim();
    if (!text || busy || retryIn > 0) return;
    setDraft("");
    submit(text);
  };
  const retry = () => {
    setRefusal(null);
    clearError();
    stick.current = true;
    void regenerate();
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) send(e);
  };

  const last = messages.at(-1);
  const offline = messages.some((m) => (m.metadata as Partial<AssistantMetadata> | undefined)?.offline);
  // A reply with nothing to show yet (or ever: one that failed before its first word) is not drawn; the dots stand for it while it is coming.
  const blank = (m: UIMessage) =>
    m.role === "assistant" && !(m.metadata as Partial<AssistantMetadata> | undefined)?.outcome && !m.parts.some((p) => (p.type === "text" && p.text) || p.type.startsWith("tool-"));
  const waiting = busy && (last?.role === "user" || (last !== undefined && blank(last)));
  // A reply that failed without a word written is not stored: the failure shows here, once, in this tab; a
  // question with no reply (that failure, seen from a reload) offers the same retry.
  const lastFailed = (last?.metadata as Partial<AssistantMetadata> | undefined)?.outcome === "error";
  const unanswered = useSettled(!busy && connection === "open" && (last?.role === "user" || (last !== undefined && blank(last))) && !refusal);
  const failure = !busy && !refusal && !lastFailed && error ? error.message : null;

  return (
    <ToolContext.Provider value={tools}>
      {offline && (
        <p
          className="offline-note"
          data-testid="offline-note"
          title="Threadline's built-in offline model answers by quoting your documents, without AI. Set OPENAI_API_KEY for a real model."
        >
          <span className="badge offline">Offline model</span> quotes your documents, no AI
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
        <div className="column">
          {messages.length === 0 && !firstMessage && (
            <div className="empty-thread">
              <p className="muted">Ask anything about your documents.</p>
              {suggestions.length > 0 && (
                <ul className="suggestions" aria-label="Suggested questions">
                  {suggestions.map((s) => (
                    <li key={s}>
                      <button type="button" onClick={() => submit(s)} disabled={connection !== "open"}>
                        {s}
                      </button>
                    </li>
                  ))}
                </ul>
              )}
            </div>
          )}
          {messages
            .filter((m) => !blank(m))
            .map((m) => (
              <MessageView key={m.id} message={m} streaming={busy && m === last && m.role === "assistant"} onRetry={m === last && !busy ? retry : undefined} />
            ))}
          {waiting && (
            <p className="typing" aria-hidden="true">
              <span className="dots">
                <i />
                <i />
                <i />
              </span>{" "}
              Searching and thinking…
            </p>
          )}
          {failure ? <FailedNote text={failure} onRetry={retry} /> : unanswered && <FailedNote text="This message has no reply." onRetry={retry} />}
        </div>
      </div>
      <div className="visually-hidden" role="status" aria-live="polite">
        {busy ? "Threadline is replying…" : last?.role === "assistant" ? "Reply finished." : ""}
      </div>
      <RefusalBanner refusal={refusal} retryIn={retryIn} connection={connection} onDismiss={() => setRefusal(null)} />
      <form className="composer" onSubmit={send}>
        <div className="composer-box">
          <label htmlFor="composer" className="visually-hidden">
            Message
          </label>
          <textarea
            ref={boxRef}
            id="composer"
            rows={1}
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
            <button type="button" className="send stop" onClick={() => void stop()} aria-label="Stop" title="Stop">
              <StopIcon />
            </button>
          ) : (
            <button type="submit" className="send primary" disabled={!draft.trim() || retryIn > 0} aria-label="Send" title="Send (Enter)">
              <SendIcon />
            </button>
          )}
        </div>
      </form>
    </ToolContext.Provider>
  );
}

/** True once `on` has held for a moment: a message another tab just sent is not "unanswered" while its reply starts. */
function useSettled(on: boolean, ms = 1500) {
  const [settled, setSettled] = useState(false);
  useEffect(() => {
    if (!on) return setSettled(false);
    const t = setTimeout(() => setSettled(true), ms);
    return () => clearTimeout(t);
  }, [on, ms]);
  return on && settled;
}

function RefusalBanner({ refusal, retryIn, connection, onDismiss }: { refusal: Refusal | null; retryIn: number; connection: Connection; onDismiss: () => void }) {
  if (!refusal || connection !== "open") return null;
  const text =
    refusal.code === "rate_limited"
      ? `You are sending messages faster than this server allows.${retryIn > 0 ? ` You can send again in ${retryIn} s.` : ""} Your message was not sent; it is back in the box.`
      : refusal.code === "token_budget_exhausted"
        ? "Your token budget is spent, so no new replies can start. Ask an administrator for more."
        : `Not sent: ${refusal.message}`;
  return (
    <div
      className={`banner ${refusal.code === "rate_limited" ? "warn" : "error"}`}
      role="alert"
      data-testid={refusal.code === "rate_limited" ? "rate-limit-banner" : "error-banner"}
    >
      <span>{text}</span>
      <button type="button" className="quiet" onClick={onDismiss} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}
