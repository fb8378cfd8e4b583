import { useState, type FormEvent } from "react";
import { threadTitle, type Thread } from "./api.ts";
import { PencilIcon, TrashIcon } from "./Icons.tsx";

type Props = {
  threads: Thread[] | null;
  error: string | null;
  selected: string | null;
  onSelect: (id: string) => void;
  onRename: (id: string, title: string) => Promise<void>;
  onDelete: (id: string) => Promise<void>;
};

export function ThreadList({ threads, error, selected, onSelect, onRename, onDelete }: Props) {
  return (
    <>
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

const when = (iso: string) => {
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString(undefined, { timeStyle: "short" }) : d.toLocaleDateString(undefined, { dateStyle: "medium" });
};

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
        // The whole title, on a line of its own, with the buttons below it.
        <form onSubmit={saveRename} className="rename-form">
          <label className="visually-hidden" htmlFor={`rename-${thread.id}`}>
            New title for {name}
          </label>
          <textarea
            id={`rename-${thread.id}`}
            value={title}
            maxLength={200}
            rows={Math.min(4, Math.max(1, Math.ceil(title.length / 26)))}
            autoFocus
            onFocus={(e) => e.currentTarget.select()}
            onChange={(e) => setTitle(e.target.value.replace(/\n/g, " "))}
            onKeyDown={(e) => (e.key === "Escape" ? setMode("view") : e.key === "Enter" && (e.preventDefault(), saveRename(e)))}
          />
          <div className="rename-actions">
            <button type="submit">Save</button>
            <button type="button" className="quiet" onClick={() => setMode("view")}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          {/* Named by its title alone; the date is its description, so a screen reader says the two apart. */}
          <button
            type="button"
            className="thread-link"
            aria-current={current ? "page" : undefined}
            aria-label={name}
            aria-describedby={`when-${thread.id}`}
            onClick={() => onSelect(thread.id)}
          >
            <span className="thread-title">{name}</span>
            <time id={`when-${thread.id}`} className="thread-date" dateTime={thread.updatedAt}>
              {when(thread.updatedAt)}
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
