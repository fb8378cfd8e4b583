// The assistant's markdown, loaded apart from the page (it and the highlighter are most of the
// weight a reply needs, none of what the first screen needs): GFM, citations, highlighted code.
import { tokenize, type ShjLanguage } from "@speed-highlight/core";
import { useEffect, useState, type ReactElement, type ReactNode } from "react";
import Markdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import { CopyIcon } from "./Icons.tsx";

type Node = { type: string; value?: string; url?: string; children?: Node[] };

/** `[3]` in a reply's text (never in code, nor already a link) becomes a link to the passage it cites. */
function remarkCitations() {
  const walk = (node: Node) => {
    if (!node.children || node.type === "link" || node.type === "linkReference") return;
    node.children = node.children.flatMap((child): Node[] => {
      if (child.type !== "text") return (walk(child), [child]);
      const parts = child.value!.split(/\[(\d{1,2})\](?!\()/);
      if (parts.length === 1) return [child];
      return parts.flatMap((p, i): Node[] => (i % 2 ? [{ type: "link", url: `#cite-${p}`, children: [{ type: "text", value: p }] }] : p ? [{ type: "text", value: p }] : []));
    });
  };
  return (tree: Node) => walk(tree);
}

const LANGUAGES: Record<string, ShjLanguage> = {
  js: "js",
  javascript: "js",
  jsx: "js",
  mjs: "js",
  ts: "ts",
  typescript: "ts",
  tsx: "ts",
  py: "py",
  python: "py",
  sh: "bash",
  bash: "bash",
  shell: "bash",
  zsh: "bash",
  console: "bash",
  json: "json",
  jsonc: "json",
  sql: "sql",
  html: "html",
  xml: "xml",
  css: "css",
  yaml: "yaml",
  yml: "yaml",
  toml: "toml",
  go: "go",
  rs: "rs",
  rust: "rs",
  c: "c",
  cpp: "c",
  java: "java",
  lua: "lua",
  md: "md",
  markdown: "md",
  diff: "diff",
  docker: "docker",
  dockerfile: "docker",
  http: "http",
  ini: "ini",
  make: "make",
  makefile: "make",
  regex: "regex",
};

function CodeBlock({ lang, code }: { lang: string | undefined; code: string }) {
  const known = lang ? LANGUAGES[lang.toLowerCase()] : undefined;
  const [tokens, setTokens] = useState<ReactNode[] | null>(null);
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!known) return setTokens(null);
    let live = true;
    const out: ReactNode[] = [];
    void tokenize(
      code,
      known,
      (text, type) =>
        void out.push(
          type ? (
            <span key={out.length} className={`tok-${type}`}>
              {text}
            </span>
          ) : (
            text
          ),
        ),
    ).then(
      () => live && setTokens(out),
      () => live && setTokens(null),
    );
    return () => void (live = false);
  }, [code, known]);
  const copy = async () => {
    await navigator.clipboard.writeText(code).catch(() => {});
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <div className="code-block">
      <div className="code-head">
        <span className="code-lang">{lang || "text"}</span>
        <button type="button" className="copy" onClick={() => void copy()} aria-label={copied ? "Copied" : `Copy ${lang || "code"}`}>
          <CopyIcon /> {copied ? "Copied" : "Copy"}
        </button>
      </div>
      <pre>
        <code>{tokens ?? code}</code>
      </pre>
    </div>
  );
}

// No raw HTML: react-markdown escapes it, and its URL filter drops javascript: links. Replies quote
// documents and messages anyone may have written: their links open in a new tab, with no referrer and no ranking.
const rel = "noopener noreferrer nofollow";

export default function AssistantMarkdown({ text, onCite }: { text: string; onCite: (n: number) => void }) {
  const components: Components = {
    a: ({ node: _node, href, children, ...props }) =>
      href?.startsWith("#cite-") ? (
        <a href={href} className="cite" aria-label={`Source ${href.slice(6)}`} onClick={(e) => (e.preventDefault(), onCite(Number(href.slice(6))))}>
          {children}
        </a>
      ) : (
        <a {...props} href={href} target="_blank" rel={rel}>
          {children}
        </a>
      ),
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
    pre: ({ children }) => {
      const code = children as ReactElement<{ className?: string; children?: ReactNode }>;
      const lang = /language-(\S+)/.exec(code?.props?.className ?? "")?.[1];
      return <CodeBlock lang={lang} code={String(code?.props?.children ?? "").replace(/\n$/, "")} />;
    },
    table: ({ node: _node, ...props }) => (
      <div className="table-wrap">
        <table {...props} />
      </div>
    ),
  };
  return (
    <Markdown remarkPlugins={[remarkGfm, remarkCitations]} components={components}>
      {text}
    </Markdown>
  );
}
