import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, storedKey, storeKey, suggestions, type DocumentInfo, type McpServer, type Thread, type User } from "./api.ts";
import { ThreadChat } from "./Chat.tsx";
import { DocumentsPanel } from "./Documents.tsx";
import { DocIcon, MenuIcon, PlugIcon, PlusIcon, SendIcon } from "./Icons.tsx";
import { McpServersPanel } from "./McpServers.tsx";
import { SearchThreads } from "./Search.tsx";
import { SignIn } from "./SignIn.tsx";
import { ThreadList } from "./ThreadList.tsx";

/** `#key=tl_…` (the link `npm run dev` prints) signs in, on load or pasted into an open tab; the key then lives in localStorage only. */
function keyFromHash(): string | null {
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(m[1]!);
}

const threadFromUrl = () => new URLSearchParams(location.search).get("thread");

function selectInUrl(id: string | null) {
  const url = new URL(location.href);
  if (id) url.searchParams.set("thread", id);
  else url.searchParams.delete("thread");
  history.replaceState(null, "", url);
}

export function App() {
  const [key, setKey] = useState<string | null>(() => keyFromHash() ?? storedKey());
  const [user, setUser] = useState<User | null>(null);
  const [signInError, setSignInError] = useState<string | null>(null);

  useEffect(() => {
    const onHash = () => {
      const k = keyFromHash();
      if (!k) return;
      setSignInError(null);
      setUser(null);
      setKey(k);
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    if (!key) return;
    let live = true;
    api.me(key).then(
      (u) => {
        if (!live) return;
        storeKey(key);
        setUser(u);
      },
      (err: unknown) => {
        if (!live) return;
        if (err instanceof ApiError && err.status === 401) {
          storeKey(null);
          setKey(null);
          setSignInError("That API key was not accepted. Check it and try again.");
        } else setSignInError(err instanceof Error ? err.message : String(err));
      },
    );
    return () => {
      live = false;
    };
  }, [key]);

  const signOut = () => {
    storeKey(null);
    setUser(null);
    setKey(null);
    selectInUrl(null);
  };

  if (!key || !user)
    return (
      <SignIn
        busy={Boolean(key) && !signInError}
        error={signInError}
        onSubmit={(k) => {
          setSignInError(null);
          setKey(k);
        }}
      />
    );
  return <Workspace key={key} apiKey={key} user={user} onSignOut={signOut} />;
}

/** Which thread is open: one by id (with a message to show, from a search), or a new one not yet created. */
type Open = { id: string; focus?: string; first?: string } | { id: null };

function Workspace({ apiKey, user, onSignOut }: { apiKey: string; user: User; onSignOut: () => void }) {
  const [threads, setThreads] = useState<Thread[] | null>(null);
  const [docs, setDocs] = useState<DocumentInfo[]>([]);
  const [servers, setServers] = useState<McpServer[]>([]);
  const [listError, setListError] = useState<string | null>(null);
  const [open, setOpen] = useState<Open | undefined>(() => (threadFromUrl() ? { id: threadFromUrl()! } : undefined));
  const [navOpen, setNavOpen] = useState(false);
  // A thread opened from the list (not on page load) takes the keyboard to its message box.
  const [focusComposer, setFocusComposer] = useState(false);
  const docsRef = useRef<HTMLDialogElement>(null);
  const mcpRef = useRef<HTMLDialogElement>(null);

  // Bumped by every change made here, so that a list asked for before one cannot undo it (a new thread vanishing).
  const changes = useRef(0);
  const refresh = useCallback(async () => {
    const asked = changes.current;
    try {
      const list = await api.listThreads(apiKey);
      if (asked === changes.current) setThreads(list);
      setListError(null);
    } catch (err) {
      setListError(err instanceof Error ? err.message : String(err));
    }
  }, [apiKey]);
  const refreshDocs = useCallback(() => api.listDocuments(apiKey).then(setDocs, () => {}), [apiKey]);
  const refreshServers = useCallback(() => api.listMcpServers(apiKey).then(setServers, () => {}), [apiKey]);
  useEffect(() => {
    void refresh();
    void refreshDocs();
    void refreshServers();
    // Threads made or renamed in another tab show up when this one comes back into view.
    const onFocus = () => void refresh();
    window.addEventListener("focus", onFocus);
    return () => window.removeEventListener("focus", onFocus);
  }, [refresh, refreshDocs, refreshServers]);
  // The first screen: the most recent thread, or a fresh one to type into.
  useEffect(() => {
    if (!threads || open !== undefined) return;
    setOpen(threads[0] ? { id: threads[0].id } : { id: null });
    selectInUrl(threads[0]?.id ?? null);
  }, [threads, open]);

  // Each "New thread" is a fresh first screen, its message box focused.
  const [fresh, setFresh] = useState(0);
  const select = (next: Open) => {
    if (next.id === null) setFresh((n) => n + 1);
    setOpen(next);
    setFocusComposer(true);
    selectInUrl(next.id);
    setNavOpen(false);
  };

  const startThread = async (text: string) => {
    try {
      const t = await api.createThread(apiKey);
      changes.current++;
      setThreads((ts) => [t, ...(ts ?? [])]);
      select({ id: t.id, first: text });
    } catch (err) {
      setListError(err instanceof Error ? err.message : String(err));
    }
  };

  const rename = async (id: string, title: string) => {
    const t = await api.renameThread(apiKey, id, title);
    changes.current++;
    setThreads((ts) => ts?.map((x) => (x.id === id ? { ...x, ...t } : x)) ?? null);
  };
  // The server titles a thread after its first exchange and tells every client on it.
  const titled = useCallback((id: string, title: string) => {
    changes.current++;
    setThreads((ts) => ts?.map((x) => (x.id === id ? { ...x, title } : x)) ?? null);
  }, []);

  const remove = async (id: string) => {
    await api.deleteThread(apiKey, id);
    changes.current++;
    setThreads((ts) => ts?.filter((x) => x.id !== id) ?? null);
    if (open?.id === id) select({ id: null });
  };

  const thread = open?.id ? threads?.find((t) => t.id === open.id) : undefined;
  const prompts = suggestions(docs);

  return (
    <div className="app">
      <a className="skip-link" href="#composer">
        Skip to the message box
      </a>
      <header className="topbar">
        <button type="button" className="nav-toggle icon" aria-expanded={navOpen} aria-controls="threads-nav" onClick={() => setNavOpen((o) => !o)} aria-label="Threads">
          <MenuIcon />
        </button>
        <h1 className="brand">
          <img src="/favicon.svg" alt="" width="22" height="22" /> Threadline
        </h1>
        <div className="topbar-actions">
          <button type="button" className="quiet" onClick={() => (void refreshDocs(), docsRef.current?.showModal())} aria-label="Documents" title="Your documents">
            <DocIcon /> <span className="label">Documents</span>
          </button>
          <button type="button" className="quiet" onClick={() => (void refreshServers(), mcpRef.current?.showModal())} aria-label="MCP servers" title="Your MCP servers">
            <PlugIcon /> <span className="label">MCP servers</span>
          </button>
          <span className="who" title={user.email}>
            {user.name || user.email}
          </span>
          <button type="button" className="quiet" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <div className="layout">
        <nav id="threads-nav" className={`sidebar${navOpen ? " open" : ""}`} aria-label="Threads">
          <button type="button" className="new-thread" onClick={() => select({ id: null })}>
            <PlusIcon /> New thread
          </button>
          <SearchThreads apiKey={apiKey} threads={threads ?? []} onOpen={(threadId, messageId) => select({ id: threadId, focus: messageId })}>
            <ThreadList threads={threads} error={listError} selected={open?.id ?? null} onSelect={(id) => select({ id })} onRename={rename} onDelete={remove} />
          </SearchThreads>
        </nav>
        <main className="chat-pane">
          {thread ? (
            <ThreadChat
              key={thread.id}
              thread={thread}
              apiKey={apiKey}
              autoFocus={focusComposer}
              firstMessage={open && "first" in open ? open.first : undefined}
              focusMessageId={open && "focus" in open ? open.focus : undefined}
              suggestions={prompts}
              documents={docs}
              servers={servers}
              onTitle={(title) => titled(thread.id, title)}
              onSignOut={onSignOut}
            />
          ) : open?.id === null ? (
            <NewThread key={fresh} suggestions={prompts} onSend={startThread} hasDocuments={docs.length > 0} onAddDocuments={() => docsRef.current?.showModal()} />
          ) : (
            <div className="empty">
              <h2>{threads === null ? "Loading…" : "That thread is not here any more."}</h2>
              {threads !== null && (
                <button type="button" className="primary" onClick={() => select({ id: null })}>
                  New thread
                </button>
              )}
            </div>
          )}
        </main>
      </div>
      <DocumentsPanel ref={docsRef} apiKey={apiKey} documents={docs} onChange={refreshDocs} />
      <McpServersPanel ref={mcpRef} apiKey={apiKey} servers={servers} threads={threads ?? []} onChange={refreshServers} />
    </div>
  );
}

/** The first screen of a new thread: a message box and questions to start with; the thread is made on the first send. */
function NewThread({
  suggestions,
  onSend,
  hasDocuments,
  onAddDocuments,
}: {
  suggestions: string[];
  onSend: (text: string) => Promise<void>;
  hasDocuments: boolean;
  onAddDocuments: () => void;
}) {
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const send = async (text: string) => {
    if (!text.trim() || busy) return;
    setBusy(true);
    await onSend(text.trim());
    setBusy(false);
  };
  return (
    <section className="chat new" aria-labelledby="new-title">
      <div className="messages">
        <div className="column welcome">
          <h2 id="new-title">What would you like to know?</h2>
          <p className="muted">Threadline answers from your documents: it searches them with every question and cites what it found.</p>
          {suggestions.length > 0 ? (
            <ul className="suggestions" aria-label="Suggested questions">
              {suggestions.map((s) => (
                <li key={s}>
                  <button type="button" onClick={() => void send(s)} disabled={busy}>
                    {s}
                  </button>
                </li>
              ))}
            </ul>
          ) : (
            !hasDocuments && (
              <p>
                <button type="button" className="link" onClick={onAddDocuments}>
                  Add a document
                </button>{" "}
                to give it something to search.
              </p>
            )
          )}
        </div>
      </div>
      <form
        className="composer"
        onSubmit={(e) => {
          e.preventDefault();
          void send(draft);
        }}
      >
        <div className="composer-box">
          <label htmlFor="composer" className="visually-hidden">
            Message
          </label>
          <textarea
            id="composer"
            rows={1}
            autoFocus
            placeholder="Ask about your documents…"
            value={draft}
            maxLength={32000}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing && (e.preventDefault(), void send(draft))}
          />
          <button type="submit" className="send primary" disabled={!draft.trim() || busy} aria-label="Send" title="Send (Enter)">
            <SendIcon />
          </button>
        </div>
      </form>
    </section>
  );
}
