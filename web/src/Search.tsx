import { useEffect, useState, type ReactNode } from "react";
import { api, ApiError, threadTitle, type MessageHit, type Thread } from "./api.ts";
import { SearchIcon } from "./Icons.tsx";

type State = { kind: "idle" } | { kind: "searching" } | { kind: "results"; hits: MessageHit[] } | { kind: "error"; message: string };

/** A search box over the user's conversations; while it holds a query, its results stand in for the thread list. */
export function SearchThreads({
  apiKey,
  threads,
  onOpen,
  children,
}: {
  apiKey: string;
  threads: Thread[];
  onOpen: (threadId: string, messageId: string) => void;
  children: ReactNode;
}) {
  const [q, setQ] = useState("");
  const [state, setState] = useState<State>({ kind: "idle" });
  useEffect(() => {
    const query = q.trim();
    if (!query) return setState({ kind: "idle" });
    setState({ kind: "searching" });
    let live = true;
    const t = setTimeout(() => {
      api.searchMessages(apiKey, query).then(
        (hits) => live && setState({ kind: "results", hits }),
        (err: unknown) =>
          live &&
          setState({
            kind: "error",
            // A server without message search refuses the scope it does not know.
            message:
              err instanceof ApiError && err.status === 422 ? "Searching conversations is not available on this server yet." : err instanceof Error ? err.message : String(err),
          }),
      );
    }, 300);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [q, apiKey]);
  const titleOf = (h: MessageHit) => h.threadTitle ?? threadTitle(threads.find((t) => t.id === h.threadId) ?? { title: null });
  return (
    <>
      <div className="search-box" role="search">
        <SearchIcon />
        <label htmlFor="thread-search" className="visually-hidden">
          Search conversations
        </label>
        <input
          id="thread-search"
          type="search"
          placeholder="Search conversations"
          value={q}
          onChange={(e) => setQ(e.target.value)}
          onKeyDown={(e) => e.key === "Escape" && setQ("")}
        />
      </div>
      {state.kind === "idle" ? (
        children
      ) : (
        <div className="search-results" aria-live="polite">
          {state.kind === "searching" && <p className="muted">Searching…</p>}
          {state.kind === "error" && <p className="muted">{state.message}</p>}
          {state.kind === "results" &&
            (state.hits.length === 0 ? (
              <p className="muted">No messages match.</p>
            ) : (
              <ul className="thread-list">
                {state.hits.map((h) => (
                  <li key={`${h.threadId}:${h.messageId}`} className="thread-item">
                    <button type="button" className="thread-link hit-link" onClick={() => onOpen(h.threadId, h.messageId)}>
                      <span className="thread-title">{titleOf(h)}</span>
                      <span className="hit-snippet">
                        {h.role === "user" ? "You: " : ""}
                        <Highlighted text={h.snippet} marks={h.highlights ?? []} />
                      </span>
                    </button>
                  </li>
                ))}
              </ul>
            ))}
        </div>
      )}
    </>
  );
}

/** The snippet as text, its matching words marked (offsets from the server; never HTML). */
function Highlighted({ text, marks }: { text: string; marks: [number, number][] }) {
  const out: ReactNode[] = [];
  let at = 0;
  for (const [from, to] of [...marks].sort((a, b) => a[0] - b[0])) {
    if (from < at || to <= from || to > text.length) continue;
    out.push(text.slice(at, from), <mark key={from}>{text.slice(from, to)}</mark>);
    at = to;
  }
  out.push(text.slice(at));
  return <>{out}</>;
}
