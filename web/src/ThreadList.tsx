import { useState, type FormEvent } from "react";
import { threadTitle, type Thread } from "./api.ts";
import { PencilIcon, TrashIcon } from "./Icons.tsx";

type Props = {
  threads: Thread[] | null;
  error: string | null;
  selected: string | null;
  onSelect: (id: string) => void;
  onCreate: () => void;
  onRename: (id: string, title: string) => Promise<void>;
  onDelete: (id: string) => Promise<void>;
};

export function ThreadList({ threads, error, selected, onSelect, onCreate, onRename, onDelete }: Props) {
  return (
    <>
      <button type="button" className="primary new-thread" onClick={onCreate}>
        New thread
      </button>
      {error && (
        <p role="alert" className="form-error">
          {error}
        </p>
      )}
      {threads === null ? (
        <p className="muted">Loading threads…</p>
      ) : threads.length === 0 ? (
        <p className="muted">No threads yet.</p>
      ) : (
        <ul className="thread-list">
          {threads.map((t) => (
            <ThreadItem key={t.id} thread={t} current={t.id === selected} onSelect={onSelect} onRename={onRename} onDelete={onDelete} />
          ))}
        </ul>
      )}
    </>
  );
}

function ThreadItem({ thread, current, onSelect, onRename, onDelete }: { thread: Thread; current: boolean } & Pick<Props, "onSelect" | "onRename" | "onDelete">) {
  const [mode, setMode] = useState<"view" | "rename" | "delete">("view");
  const [title, setTitle] = useState(thread.title ?? "");
  const [error, setError] = useState<string | null>(null);
  const name = threadTitle(thread);

  const run = async (action: () => Promise<void>) => {
    try {
      setError(null);
      await action();
      setMode("view");
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  const saveRename = (e: FormEvent) => {
    e.preventDefault();
    if (title.trim()) void run(() => onRename(thread.id, title.trim()));
  };

  return (
    <li className={`thread-item${current ? " current" : ""}`}>
      {mode === "rename" ? (
        <form onSubmit={saveRename} className="rename-form">
          <label className="visually-hidden" htmlFor={`rename-${thread.id}`}>
            New title for {name}
          </label>
          <input
            id={`rename-${thread.id}`}
            value={title}
            maxLength={200}
            autoFocus
            onChange={(e) => setTitle(e.target.value)}
            onKeyDown={(e) => e.key === "Escape" && setMode("view")}
          />
          <button type="submit">Save</button>
          <button type="button" className="quiet" onClick={() => setMode("view")}>
            Cancel
          </button>
        </form>
      ) : (
        <>
          <button type="button" className="thread-link" aria-current={current ? "page" : undefined} onClick={() => onSelect(thread.id)}>
            <span className="thread-title">{name}</span>
            <time className="thread-date" dateTime={thread.updatedAt}>
              {new Date(thread.updatedAt).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}
            </time>
          </button>
          {mode === "delete" ? (
            <div className="confirm" role="group" aria-label={`Delete ${name}?`}>
              <span>Delete?</span>
              <button type="button" className="danger" autoFocus onClick={() => void run(() => onDelete(thread.id))}>
                Delete
              </button>
              <button type="button" className="quiet" onClick={() => setMode("view")}>
                Keep
              </button>
            </div>
          ) : (
            <div className="thread-actions">
              <button type="button" className="icon" aria-label={`Rename ${name}`} title="Rename" onClick={() => (setTitle(thread.title ?? ""), setMode("rename"))}>
                <PencilIcon />
              </button>
              <button type="button" className="icon" aria-label={`Delete ${name}`} title="Delete" onClick={() => setMode("delete")}>
                <TrashIcon />
              </button>
            </div>
          )}
        </>
      )}
      {error && (
        <p role="alert" className="form-error">
          {error}
        </p>
      )}
    </li>
  );
}
