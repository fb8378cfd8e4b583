import { forwardRef, useState, type ChangeEvent, type FormEvent } from "react";
import { api, threadTitle, type McpProbe, type McpServer, type Thread } from "./api.ts";
import { TrashIcon } from "./Icons.tsx";

type Result = { ok: boolean; text: string };
type Props = { apiKey: string; servers: McpServer[]; threads: Thread[]; onChange: () => Promise<void> };
type Test = McpProbe | { status: "testing" } | { status: "error"; message: string };

const empty = { name: "", url: "", token: "", threadId: "" };
const reason = (err: unknown) => (err instanceof Error ? err.message : String(err));
const testText = (t: Test) =>
  t.status === "testing"
    ? "Testing…"
    : t.status === "ok"
      ? `Connected: ${t.tools.length} tool${t.tools.length === 1 ? "" : "s"}${t.tools.length ? `: ${t.tools.map((x) => x.name).join(", ")}` : ""}.`
      : t.status === "timeout"
        ? `Timed out: ${t.message}`
        : `Could not connect: ${t.message}`;

/** The user's MCP servers, each testable and removable, and a form that adds one (for all threads or one). */
export const McpServersPanel = forwardRef<HTMLDialogElement, Props>(function McpServersPanel({ apiKey, servers, threads, onChange }, ref) {
  const [form, setForm] = useState(empty);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Result | null>(null);
  const [tests, setTests] = useState<Record<string, Test>>({});
  const [removing, setRemoving] = useState<string | null>(null);
  const close = () => (ref as { current: HTMLDialogElement | null }).current?.close();
  const field = (k: keyof typeof empty) => ({
    id: `mcp-${k}`,
    value: form[k],
    onChange: (e: ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setForm((f) => ({ ...f, [k]: e.target.value })),
  });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setResult(null);
    try {
      const s = await api.addMcpServer(apiKey, {
        name: form.name.trim(),
        url: form.url.trim(),
        ...(form.token && { token: form.token }),
        ...(form.threadId && { threadId: form.threadId }),
      });
      setResult({ ok: true, text: `Added ${s.name}. Test it to see its tools.` });
      setForm(empty);
      await onChange();
    } catch (err) {
      setResult({ ok: false, text: reason(err) });
    } finally {
      setBusy(false);
    }
  };
  const test = async (s: McpServer) => {
    setTests((t) => ({ ...t, [s.id]: { status: "testing" } }));
    const r: Test = await api.testMcpServer(apiKey, s.id).catch((err: unknown) => ({ status: "error", message: reason(err) }));
    setTests((t) => ({ ...t, [s.id]: r }));
  };
  const remove = async (s: McpServer) => {
    try {
      await api.removeMcpServer(apiKey, s.id);
      setRemoving(null);
      setResult({ ok: true, text: `Removed ${s.name}.` });
      await onChange();
    } catch (err) {
      setResult({ ok: false, text: reason(err) });
    }
  };

  return (
    <dialog ref={ref} className="documents" aria-labelledby="mcp-heading">
      <div className="dialog-head">
        <h2 id="mcp-heading">Your MCP servers</h2>
        <button type="button" className="quiet" onClick={close}>
          Close
        </button>
      </div>
      <p className="muted">Their tools are offered to the model; it asks you before every call.</p>
      {servers.length === 0 ? (
        <p className="muted">No MCP servers yet: add one below.</p>
      ) : (
        <ul className="doc-list" aria-label="MCP servers">
          {servers.map((s) => {
            const scope = s.threadId ? threads.find((t) => t.id === s.threadId) : undefined;
            const t = tests[s.id];
            return (
              <li key={s.id} className="doc-item mcp-item">
                <span className="doc-title">{s.name}</span>
                <span className="doc-meta">
                  {s.url}
                  <br />
                  {s.threadId ? `Only in “${scope ? threadTitle(scope) : "a thread"}”` : "All threads"}
                  {s.hasToken && " · with a token"}
                </span>
                {removing === s.id ? (
                  <span className="confirm" role="group" aria-label={`Remove ${s.name}?`}>
                    <button type="button" className="danger" autoFocus onClick={() => void remove(s)}>
                      Remove
                    </button>
                    <button type="button" className="quiet" onClick={() => setRemoving(null)}>
                      Keep
                    </button>
                  </span>
                ) : (
                  <span className="confirm">
                    <button type="button" aria-label={`Test ${s.name}`} disabled={t?.status === "testing"} onClick={() => void test(s)}>
                      Test
                    </button>
                    <button type="button" className="icon" aria-label={`Remove ${s.name}`} title="Remove" onClick={() => setRemoving(s.id)}>
                      <TrashIcon />
                    </button>
                  </span>
                )}
                {t && (
                  <p className={`mcp-test ${t.status === "ok" ? "form-ok" : t.status === "testing" ? "muted" : "form-error"}`} role="status" aria-label={`Test of ${s.name}`}>
                    {testText(t)}
                  </p>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <form onSubmit={submit} aria-labelledby="mcp-add-heading">
        <h3 id="mcp-add-heading">Add a server</h3>
        <p className="muted">A streamable HTTP MCP server, on a public https URL.</p>
        <label htmlFor="mcp-name">Name</label>
        <input {...field("name")} required maxLength={24} autoComplete="off" aria-describedby="mcp-name-hint" />
        <span id="mcp-name-hint" className="muted hint">
          Lower-case letters, digits, - and _. The model calls its tools mcp_name_tool.
        </span>
        <label htmlFor="mcp-url">URL</label>
        <input {...field("url")} type="url" required placeholder="https://mcp.example.com/mcp" />
        <label htmlFor="mcp-token">Bearer token (optional)</label>
        <input {...field("token")} type="password" autoComplete="off" />
        <label htmlFor="mcp-threadId">Used in</label>
        <select {...field("threadId")}>
          <option value="">All threads</option>
          {threads.map((t) => (
            <option key={t.id} value={t.id}>
              {threadTitle(t)}
            </option>
          ))}
        </select>
        <div role="status" aria-live="polite" className={result ? (result.ok ? "form-ok" : "form-error") : undefined}>
          {result?.text}
        </div>
        <div className="dialog-actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Adding…" : "Add server"}
          </button>
        </div>
      </form>
    </dialog>
  );
});
