import type { UIMessage } from "ai";
import { memo } from "react";
import Markdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import { SearchIcon } from "./Icons.tsx";

import type { AssistantMetadata, SearchToolOutput as SearchOutput } from "../../src/messages.ts";

type ToolPart = { type: string; toolCallId: string; state: string; input?: unknown; output?: unknown; errorText?: string };

// No raw HTML: react-markdown escapes it, and its URL filter drops javascript: links. Replies quote
// documents and messages anyone may have written: their links open in a new tab, with no referrer and no ranking.
const rel = "noopener noreferrer nofollow";
const components: Components = {
  a: ({ node: _node, ...props }) => <a {...props} target="_blank" rel={rel} />,
  // An image would be fetched as soon as it rendered: a tracking pixel, or a URL that carries away what the
  // reply says. It becomes a link to follow, or not.
  img: ({ src, alt }) =>
    typeof src === "string" && src ? (
      <a href={src} title={src} target="_blank" rel={rel} className="image-link">
        {alt || src}
      </a>
    ) : (
      <span>{alt}</span>
    ),
};

export const MessageView = memo(function MessageView({ message, streaming }: { message: UIMessage; streaming: boolean }) {
  const meta = (message.metadata ?? {}) as Partial<AssistantMetadata>;
  const mine = message.role === "user";
  return (
    <article className={`message ${message.role}`} data-role={message.role} data-streaming={streaming || undefined} aria-label={mine ? "You" : "Threadline"}>
      <div className="message-head">
        <span className="author">{mine ? "You" : "Threadline"}</span>
        {meta.offline && (
          <span className="badge offline" title="Threadline's built-in offline model: deterministic replies, no AI">
            Offline model
          </span>
        )}
        {!mine && meta.model && !meta.offline && <span className="badge">{meta.model}</span>}
      </div>
      {message.parts.map((part, i) => {
        if (part.type === "text")
          return (
            <div key={i} className="markdown">
              {mine ? <p className="plain">{part.text}</p> : <Markdown remarkPlugins={[remarkGfm]} components={components}>{part.text}</Markdown>}
            </div>
          );
        if (part.type.startsWith("tool-")) return <ToolCard key={i} part={part as unknown as ToolPart} />;
        return null;
      })}
      {streaming && <span className="cursor" aria-hidden="true" />}
    </article>
  );
});

function ToolCard({ part }: { part: ToolPart }) {
  const name = part.type.slice("tool-".length);
  if (name !== "hybrid_search")
    return (
      <div className="tool-card" data-tool={name}>
        <div className="tool-head">
          Used <code>{name}</code>
          {part.state.startsWith("input") && "…"}
        </div>
      </div>
    );
  const query = (part.input as { query?: string } | undefined)?.query;
  const output = part.output as SearchOutput | undefined;
  return (
    <section className="tool-card" data-tool="hybrid_search" aria-label="Document search">
      <div className="tool-head">
        <SearchIcon /> {part.state === "output-available" ? "Searched documents for" : "Searching documents for"} <q className="tool-query">{query ?? "…"}</q>
        {output?.status === "ok" && output.cached && <span className="badge">cached</span>}
      </div>
      {part.state === "output-error" && <p className="form-error">Search failed: {part.errorText}</p>}
      {output && output.status !== "ok" && <p className="form-error">{output.message ?? (output.status === "rate_limited" ? "Search is rate limited." : "Search is unavailable.")}</p>}
      {output?.status === "ok" &&
        (output.results.length === 0 ? (
          <p className="muted">No matching passages.</p>
        ) : (
          <ol className="hits">
            {output.results.map((hit) => (
              <li key={hit.chunkId} className="hit">
                <span className="hit-title">{hit.title}</span>
                <span className="hit-score" title="relevance score">
                  {hit.score.toFixed(2)}
                </span>
                <p className="hit-snippet">{snippet(hit.text)}</p>
              </li>
            ))}
          </ol>
        ))}
    </section>
  );
}

const snippet = (text: string) => (text.length > 220 ? `${text.slice(0, 217).trimEnd()}…` : text);
