import type { UIMessage } from "ai";
import { createContext, lazy, memo, Suspense, useContext, useEffect, useId, useRef, useState } from "react";
import type { ApprovalInfo, DocumentInfo, McpServer } from "./api.ts";
import { ChevronIcon, RetryIcon, SearchIcon, ShieldIcon } from "./Icons.tsx";

import { markdownToText, type AssistantMetadata, type SearchToolOutput as SearchOutput } from "../../src/messages.ts";

type ToolPart = { type: string; toolCallId: string; state: string; input?: unknown; output?: unknown; errorText?: string; approval?: { id: string; approved?: boolean } };

/** What tool cards take from their conversation: how to decide (unset while disconnected), the server's approvals, names for ids. */
export type ToolCards = { decide?: (approvalId: string, approved: boolean) => void; approvals: Map<string, ApprovalInfo>; documents: DocumentInfo[]; servers: McpServer[] };
export const ToolContext = createContext<ToolCards>({ approvals: new Map(), documents: [], servers: [] });

const loadMarkdown = () => import("./Markdown.tsx");
const Markdown = lazy(loadMarkdown);
/** Fetched as soon as a thread opens, so the first reply rarely waits for it. */
export const preloadMarkdown = () => void loadMarkdown();

type Props = { message: UIMessage; streaming: boolean; onRetry?: () => void };

export const MessageView = memo(function MessageView({ message, streaming, onRetry }: Props) {
  const meta = (message.metadata ?? {}) as Partial<AssistantMetadata>;
  const mine = message.role === "user";
  const [open, setOpen] = useState<Set<number>>(() => new Set());
  const [cited, setCited] = useState<number | null>(null);
  const root = useRef<HTMLElement>(null);
  const searches = message.parts.flatMap((p, i) => (p.type === "tool-hybrid_search" ? [i] : []));
  // Passages are numbered across the reply's searches, in order: [1] is the first search's first passage.
  const offsets = new Map<number, [number, number]>();
  let count = 0;
  for (const i of searches) {
    const out = (message.parts[i] as unknown as ToolPart).output as SearchOutput | undefined;
    const found = out?.status === "ok" ? out.results.length : 0;
    offsets.set(i, [count, count + found]);
    count += found;
  }
  const cite = (n: number) => {
    const card = searches.find((i) => offsets.get(i)![0] < n && n <= offsets.get(i)![1]);
    if (card === undefined) return;
    setOpen((s) => new Set(s).add(card));
    setCited(n);
    requestAnimationFrame(() => root.current?.querySelector<HTMLElement>(`[data-passage="${n}"]`)?.focus());
  };
  const compacted = message.parts.some((p) => p.type === "data-compaction");
  const text = message.parts.some((p) => p.type === "text" && p.text);
  return (
    <>
      {compacted && (
        <div className="compaction" role="separator" data-testid="compaction">
          <span>Earlier messages summarized</span>
        </div>
      )}
      <article
        ref={root}
        className={`message ${message.role}`}
        data-role={message.role}
        data-streaming={streaming || undefined}
        data-outcome={meta.outcome}
        data-message-id={message.id}
        aria-label={mine ? "You" : "Threadline"}
      >
        {!mine && (
          <div className="message-head">
            <span className="avatar" aria-hidden="true">
              T
            </span>
            <span className="author">Threadline</span>
            {meta.offline && (
              <span className="badge offline" title="Threadline's built-in offline model: it quotes your documents, no AI">
                Offline model
              </span>
            )}
            {meta.model && !meta.offline && <span className="badge">{meta.model}</span>}
          </div>
        )}
        <div className="message-body">
          {message.parts.map((part, i) => {
            if (part.type === "text")
              return mine ? (
                <p key={i} className="plain">
                  {part.text}
                </p>
              ) : (
                <div key={i} className="markdown">
                  <Suspense fallback={<p className="plain">{part.text}</p>}>
                    <Markdown text={part.text} onCite={cite} />
                  </Suspense>
                </div>
              );
            if (part.type.startsWith("tool-"))
              return (
                <ToolCard
                  key={i}
                  part={part as unknown as ToolPart}
                  offset={offsets.get(i)?.[0] ?? 0}
                  open={open.has(i)}
                  cited={cited}
                  onToggle={() => setOpen((s) => (s.has(i) ? (s.delete(i), new Set(s)) : new Set(s).add(i)))}
                />
              );
            return null;
          })}
          {meta.outcome === "stopped" && (
            <p className="outcome stopped" data-testid="stopped">
              {text ? "Stopped" : "Stopped before it began"}
            </p>
          )}
          {meta.outcome === "error" && <FailedNote text={meta.error ?? "The reply failed."} onRetry={onRetry} />}
        </div>
      </article>
    </>
  );
});

/** A turn that failed, said where it happened, with a way to try again. */
export function FailedNote({ text, onRetry }: { text: string; onRetry?: () => void }) {
  return (
    <div className="outcome failed" role="alert" data-testid="turn-failed">
      <span>
        <strong>This reply failed.</strong> {text}
      </span>
      {onRetry && (
        <button type="button" className="quiet retry" onClick={onRetry}>
          <RetryIcon /> Retry
        </button>
      )}
    </div>
  );
}

function ToolCard({ part, offset, open, cited, onToggle }: { part: ToolPart; offset: number; open: boolean; cited: number | null; onToggle: () => void }) {
  const id = useId();
  const name = part.type.slice("tool-".length);
  const running = part.state.startsWith("input");
  if (part.approval) return <ActionCard part={part} name={name} approvalId={part.approval.id} />;
  if (name !== "hybrid_search")
    return (
      <div className="tool-card" data-tool={name}>
        <div className="tool-head">
          Used <code>{name}</code>
          {running && "…"}
        </div>
      </div>
    );
  const query = (part.input as { query?: string } | undefined)?.query;
  const output = part.output as SearchOutput | undefined;
  const hits = output?.status === "ok" ? output.results : [];
  const summary =
    part.state === "output-error"
      ? "search failed"
      : output && output.status !== "ok"
        ? "search unavailable"
        : running
          ? "searching…"
          : `${hits.length} passage${hits.length === 1 ? "" : "s"}`;
  return (
    <section className="tool-card" data-tool="hybrid_search" data-open={open || undefined} aria-label="Document search">
      <button type="button" className="tool-head" aria-expanded={open} aria-controls={id} onClick={onToggle}>
        <SearchIcon />
        <span className="tool-what">
          {running ? "Searching for" : "Searched for"} <q className="tool-query">{query ?? "…"}</q>
        </span>
        <span className="tool-count">{summary}</span>
        {output?.status === "ok" && output.cached && <span className="badge">cached</span>}
        <ChevronIcon />
      </button>
      <div id={id} hidden={!open}>
        {part.state === "output-error" && <p className="form-error">Search failed: {part.errorText}</p>}
        {output && output.status !== "ok" && (
          <p className="form-error">{output.message ?? (output.status === "rate_limited" ? "Search is rate limited." : "Search is unavailable.")}</p>
        )}
        {output?.status === "ok" &&
          (hits.length === 0 ? (
            <p className="muted">No matching passages.</p>
          ) : (
            <ol className="hits" start={offset + 1}>
              {hits.map((hit, i) => (
                <li key={hit.chunkId} className={`hit${cited === offset + i + 1 ? " cited" : ""}`} data-passage={offset + i + 1} tabIndex={-1}>
                  <span className="hit-title">{hit.title}</span>
                  <span className="hit-score" title="relevance score">
                    {hit.score.toFixed(2)}
                  </span>
                  <p className="hit-snippet">{snippet(hit.text)}</p>
                </li>
              ))}
            </ol>
          ))}
      </div>
    </section>
  );
}

const snippet = (md: string) => {
  const text = markdownToText(md).replace(/\s+/g, " ");
  return text.length > 220 ? `${text.slice(0, 217).trimEnd()}…` : text;
};

type Acted = { status?: string; message?: string };
const DONE: Record<string, string> = { save_note: "saved", delete_document: "deleted" };

/** What a held tool call will do, in words: the tool's own input, and names for the ids it carries. */
function describe(name: string, input: Record<string, unknown>, { documents, servers }: ToolCards): string {
  const str = (v: unknown) => (typeof v === "string" ? v : "…");
  if (name === "save_note") return `Save a note: ${str(input.title)}`;
  if (name === "delete_document") {
    const doc = documents.find((d) => d.id === input.documentId);
    return `Delete the document ${doc ? `“${doc.title}”` : str(input.documentId)}`;
  }
  if (name.startsWith("mcp_")) {
    // mcp_<server>_<tool>: a server name may hold "_" itself, so the longest of the user's that fits wins.
    const server =
      servers
        .map((s) => s.name)
        .filter((n) => name.startsWith(`mcp_${n}_`))
        .sort((a, b) => b.length - a.length)[0] ?? name.slice(4).split("_")[0]!;
    return `Call ${name.slice(5 + server.length)} on MCP server ${server}`;
  }
  return `Run ${name}`;
}

const json = (v: unknown) => {
  const text = JSON.stringify(v, null, 2) ?? "";
  return text.length > 4000 ? `${text.slice(0, 3999)}…` : text;
};

const expiresIn = (at: number) => {
  const min = Math.ceil((at - Date.now()) / 60_000);
  return min <= 1 ? "in a minute" : min <= 90 ? `in ${min} min` : `in ${Math.round(min / 60)} h`;
};

/** A tool call that waited for the owner's decision: what it does, its input, Approve and Deny while it waits, then how it ended. */
function ActionCard({ part, name, approvalId }: { part: ToolPart; name: string; approvalId: string }) {
  const cards = useContext(ToolContext);
  const [open, setOpen] = useState(false);
  const [, tick] = useState(0);
  const id = useId();
  const known = cards.approvals.get(approvalId);
  const pending = part.state === "approval-requested";
  useEffect(() => {
    if (!pending) return;
    const t = setInterval(() => tick((n) => n + 1), 30_000);
    return () => clearInterval(t);
  }, [pending]);
  const out = part.output as Acted | undefined;
  const failure = part.state === "output-error" ? (part.errorText ?? "The tool failed.") : out?.status && out.status !== "ok" ? (out.message ?? out.status) : null;
  const [outcome, label] = pending
    ? ["pending", "Needs your approval"]
    : part.state === "output-denied" || part.approval?.approved === false
      ? known?.status === "expired"
        ? ["expired", "Expired"]
        : ["declined", "Declined"]
      : failure
        ? ["failed", "Approved · failed"]
        : part.state === "output-available"
          ? ["done", `Approved · ${DONE[name] ?? "done"}`]
          : ["running", "Approved · running…"];
  const what = describe(name, (part.input ?? {}) as Record<string, unknown>, cards);
  return (
    <section className="tool-card action" data-tool={name} data-outcome={outcome} data-open={open || undefined} aria-label={what}>
      <button type="button" className="tool-head" aria-expanded={open} aria-controls={id} onClick={() => setOpen((o) => !o)}>
        <ShieldIcon />
        <span className="tool-what">{what}</span>
        <span className="tool-count" data-testid="tool-outcome">
          {label}
        </span>
        <ChevronIcon />
      </button>
      {pending && (
        <div className="approval-actions" role="group" aria-label={`Allow: ${what}?`}>
          <span className="muted">Allow this?{known?.status === "pending" && ` Expires ${expiresIn(known.expiresAt)}.`}</span>
          <span>
            <button type="button" className="primary" disabled={!cards.decide} onClick={() => cards.decide?.(approvalId, true)}>
              Approve
            </button>
            <button type="button" disabled={!cards.decide} onClick={() => cards.decide?.(approvalId, false)}>
              Deny
            </button>
          </span>
        </div>
      )}
      {failure && <p className="form-error">{failure}</p>}
      <div id={id} hidden={!open}>
        <pre className="tool-json" role="group" aria-label="Input">
          {json(part.input)}
        </pre>
        {part.state === "output-available" && !failure && (
          <pre className="tool-json" role="group" aria-label="Result">
            {json(part.output)}
          </pre>
        )}
      </div>
    </section>
  );
}
