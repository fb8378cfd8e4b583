import { forwardRef, useState, type ChangeEvent, type FormEvent } from "react";
import { api, MAX_UPLOAD_BYTES } from "./api.ts";

type Result = { ok: true; text: string } | { ok: false; text: string };

/** Sends pasted text, or a text file's contents, to the ingestion API so the assistant can search it. */
export const UploadPanel = forwardRef<HTMLDialogElement, { apiKey: string }>(function UploadPanel({ apiKey }, ref) {
  const [title, setTitle] = useState("");
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Result | null>(null);
  const [uploads, setUploads] = useState(0);

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
    } catch (err) {
      setResult({ ok: false, text: err instanceof Error ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} className="upload" aria-labelledby="upload-heading">
      <form onSubmit={submit}>
        <h2 id="upload-heading">Add a document</h2>
        <p className="muted">Paste text or pick a .txt or .md file (up to 64 KiB). The assistant searches your documents when it answers.</p>
        <label htmlFor="doc-title">Title</label>
        <input id="doc-title" required maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} />
        <label htmlFor="doc-file">Text file</label>
        <input key={uploads} id="doc-file" type="file" accept=".txt,.md,.markdown,text/plain,text/markdown" onChange={(e) => void pick(e)} />
        <label htmlFor="doc-text">Text</label>
        <textarea id="doc-text" required rows={10} value={text} onChange={(e) => setText(e.target.value)} />
        <div role="status" aria-live="polite" className={result ? (result.ok ? "form-ok" : "form-error") : undefined}>
          {result?.text}
        </div>
        <div className="dialog-actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Uploading…" : "Upload"}
          </button>
          <button type="button" className="quiet" onClick={() => (ref as { current: HTMLDialogElement | null }).current?.close()}>
            Close
          </button>
        </div>
      </form>
    </dialog>
  );
});
