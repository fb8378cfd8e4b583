import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, storedKey, storeKey, type Thread, type User } from "./api.ts";
import { ThreadChat } from "./Chat.tsx";
import { SignIn } from "./SignIn.tsx";
import { ThreadList } from "./ThreadList.tsx";
import { UploadPanel } from "./UploadPanel.tsx";

/** `#key=tl_…` (the link `npm run dev` prints) signs in at once; the key then lives in localStorage only. */
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
  return <Workspace apiKey={key} user={user} onSignOut={signOut} />;
}

function Workspace({ apiKey, user, onSignOut }: { apiKey: string; user: User; onSignOut: () => void }) {
  const [threads, setThreads] = useState<Thread[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(threadFromUrl);
  const [navOpen, setNavOpen] = useState(false);
  // A thread opened from the list (not on page load) takes the keyboard to its message box.
  const [focusComposer, setFocusComposer] = useState(false);
  const uploadRef = useRef<HTMLDialogElement>(null);

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
  useEffect(() => {
    void refresh();
    // Threads made or renamed in another tab show up when this one comes back into view.
    const onFocus = () => void refresh();
    window.addEventListener("focus", onFocus);
    return () => window.removeEventListener("focus", onFocus);
  }, [refresh]);

  const select = (id: string | null) => {
    setSelected(id);
    setFocusComposer(true);
    selectInUrl(id);
    setNavOpen(false);
  };

  const create = async () => {
    try {
      const t = await api.createThread(apiKey);
      changes.current++;
      setThreads((ts) => [t, ...(ts ?? [])]);
      select(t.id);
    } catch (err) {
      setListError(err instanceof Error ? err.message : String(err));
    }
  };

  const rename = async (id: string, title: string) => {
    const t = await api.renameThread(apiKey, id, title);
    changes.current++;
    setThreads((ts) => ts?.map((x) => (x.id === id ? { ...x, ...t } : x)) ?? null);
  };

  const remove = async (id: string) => {
    await api.deleteThread(apiKey, id);
    changes.current++;
    setThreads((ts) => ts?.filter((x) => x.id !== id) ?? null);
    if (selected === id) select(null);
  };

  const thread = threads?.find((t) => t.id === selected);

  return (
    <div className="app">
      <a className="skip-link" href="#composer">
        Skip to the message box
      </a>
      <header className="topbar">
        <button type="button" className="nav-toggle" aria-expanded={navOpen} aria-controls="threads-nav" onClick={() => setNavOpen((o) => !o)}>
          Threads
        </button>
        <h1 className="brand">Threadline</h1>
        <div className="topbar-actions">
          <button type="button" onClick={() => uploadRef.current?.showModal()}>
            Add documents
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
          <ThreadList threads={threads} error={listError} selected={selected} onSelect={select} onCreate={create} onRename={rename} onDelete={remove} />
        </nav>
        <main className="chat-pane">
          {thread ? (
            <ThreadChat key={thread.id} thread={thread} apiKey={apiKey} autoFocus={focusComposer} onRename={(title) => rename(thread.id, title)} onSignOut={onSignOut} />
          ) : (
            <div className="empty">
              <h2>{threads === null ? "Loading…" : selected ? "That thread is not here any more." : "Start a conversation"}</h2>
              <p>Threadline answers from your documents: it searches them with every question and cites what it found.</p>
              <button type="button" className="primary" onClick={create}>
                New thread
              </button>
            </div>
          )}
        </main>
      </div>
      <UploadPanel ref={uploadRef} apiKey={apiKey} />
    </div>
  );
}
