import { forwardRef, useState, type ChangeEvent, type FormEvent } from "react";
import { api, MAX_UPLOAD_BYTES, type DocumentInfo } from "./api.ts";
import { TrashIcon } from "./Icons.tsx";

type Result = { ok: boolean; text: string };
type Props = { apiKey: string; documents: DocumentInfo[]; onChange: () => Promise<void> };

/** The user's documents, each deletable, and a form that adds one: pasted text, or a .txt/.md file's contents. */
export const DocumentsPanel = forwardRef<HTMLDialogElement, Props>(function DocumentsPanel({ apiKey, documents, onChange }, ref) {
  const [title, setTitle] = useState("");
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Result | null>(null);
  const [uploads, setUploads] = useState(0);
  const [deleting, setDeleting] = useState<string | null>(null);
  const close = () => (ref as { current: HTMLDialogElement | null }).current?.close();

  const pick = async (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0];
    if (!file) return;
    setResult(null);
    if (file.size > MAX_UPLOAD_BYTES) return setResult({ ok: false, text: `${file.name} is ${Math.ceil(file.size / 1024)} KiB; the limit is 64 KiB.` });
    setText(await file.text());
    if (!title.trim()) setTitle(file.name.replace(/\.[^.]+$/, ""));
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const body = { title: title.trim(), text };
    if (new TextEncoder().encode(JSON.stringify(body)).length > MAX_UPLOAD_BYTES)
      return setResult({ ok: false, text: "That text is over the 64 KiB limit. Split it into smaller documents." });
    setBusy(true);
    setResult(null);
    try {
      const doc = await api.uploadDocument(apiKey, body);
      setResult({ ok: true, text: `Added “${doc.title}” (${doc.chunkCount} passage${doc.chunkCount === 1 ? "" : "s"}). Ask about it in any thread.` });
      setTitle("");
      setText("");
      setUploads((n) => n + 1);
      await onChange();
    } catch (err) {
      setResult({ ok: false, text: err instanceof Error ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };

  const remove = async (doc: DocumentInfo) => {
    try {
      await api.deleteDocument(apiKey, doc.id);
      setDeleting(null);
      setResult({ ok: true, text: `Deleted “${doc.title}”.` });
      await onChange();
    } catch (err) {
      setResult({ ok: false, text: err instanceof Error ? err.message : String(err) });
    }
  };

  return (
    <dialog ref={ref} className="documents" aria-labelledby="documents-heading">
      <div className="dialog-head">
        <h2 id="documents-heading">Your documents</h2>
        <button type="button" className="quiet" onClick={close}>
          Close
        </button>
      </div>
      <p className="muted">Threadline searches these whenever it answers.</p>
      {documents.length === 0 ? (
        <p className="muted">No documents yet: add one below.</p>
      ) : (
        <ul className="doc-list" aria-label="Documents">
          {documents.map((d) => (
            <li key={d.id} className="doc-item">
              <span className="doc-title">{d.title}</span>
              <span className="doc-meta">
                {d.global ? "shared · " : ""}
                {d.chunkCount} passage{d.chunkCount === 1 ? "" : "s"} · {new Date(d.createdAt).toLocaleDateString(undefined, { dateStyle: "medium" })}
              </span>
              {!d.global &&
                (deleting === d.id ? (
                  <span className="confirm" role="group" aria-label={`Delete ${d.title}?`}>
                    <button type="button" className="danger" autoFocus onClick={() => void remove(d)}>
                      Delete
                    </button>
                    <button type="button" className="quiet" onClick={() => setDeleting(null)}>
                      Keep
                    </button>
                  </span>
                ) : (
                  <button type="button" className="icon" aria-label={`Delete ${d.title}`} title="Delete" onClick={() => setDeleting(d.id)}>
                    <TrashIcon />
                  </button>
                ))}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={submit} aria-labelledby="upload-heading">
        <h3 id="upload-heading">Add a document</h3>
        <p className="muted">Paste text or pick a .txt or .md file (up to 64 KiB).</p>
        <label htmlFor="doc-title">Title</label>
        <input id="doc-title" required maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} />
        <label htmlFor="doc-file">Text file</label>
        <input key={uploads} id="doc-file" type="file" accept=".txt,.md,.markdown,text/plain,text/markdown" onChange={(e) => void pick(e)} />
        <label htmlFor="doc-text">Text</label>
        <textarea id="doc-text" required rows={6} value={text} onChange={(e) => setText(e.target.value)} />
        <div role="status" aria-live="polite" className={result ? (result.ok ? "form-ok" : "form-error") : undefined}>
          {result?.text}
        </div>
        <div className="dialog-actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Uploading…" : "Upload"}
          </button>
        </div>
      </form>
    </dialog>
  );
});
