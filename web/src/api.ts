/**
 * The HTTP API the page uses: threads, the caller, documents, search, tickets. Every call carries the
 * API key in its Authorization header, never in a URL (URLs end up in logs, history and Referer headers).
 */

export type Thread = { id: string; title: string | null; createdAt: string; updatedAt: string };
export type User = { id: string; email: string; name: string | null };
export type DocumentInfo = { id: string; title: string; source: string | null; metadata: unknown; chunkCount: number; global: boolean; createdAt: string };
/** A message `GET /api/v1/search?scope=messages` found: `highlights` are [start, end) offsets of the matching words in `snippet`. */
export type MessageHit = { threadId: string; threadTitle?: string | null; messageId: string; role: string; createdAt: string; snippet: string; highlights?: [number, number][] };
/** A tool call the server holds for the owner's decision (`GET /api/v1/threads/:id/approvals`); times in ms since the epoch. */
export type ApprovalInfo = { approvalId: string; toolName: string; status: "pending" | "approved" | "denied" | "expired"; expiresAt: number };
export type McpServer = { id: string; name: string; url: string; threadId: string | null; hasToken: boolean; createdAt: string };
export type McpProbe = { status: "ok"; tools: { name: string; toolName: string; description: string | null }[] } | { status: "mcp_unavailable" | "timeout"; message: string };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

async function call<T>(key: string, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "The server could not be reached. Check your connection and try again.");
  }
  if (res.status === 204) return undefined as T;
  const json = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string; retryAfter?: number } };
  if (!res.ok) {
    const e = json.error ?? {};
    throw new ApiError(res.status, e.code ?? "http_error", e.message ?? `request failed (${res.status})`, e.retryAfter);
  }
  return json as T;
}

export const api = {
  me: (key: string) => call<{ user: User }>(key, "GET", "/users/me").then((r) => r.user),
  listThreads: (key: string) => call<{ items: Thread[] }>(key, "GET", "/threads?limit=100").then((r) => r.items),
  createThread: (key: string, title?: string) => call<{ thread: Thread }>(key, "POST", "/threads", title ? { title } : {}).then((r) => r.thread),
  renameThread: (key: string, id: string, title: string) => call<{ thread: Thread }>(key, "PATCH", `/threads/${id}`, { title }).then((r) => r.thread),
  deleteThread: (key: string, id: string) => call<void>(key, "DELETE", `/threads/${id}`),
  /** A short-lived ticket (about a minute) that opens this one thread's WebSocket and history in place of the key. */
  ticket: (key: string, id: string) => call<{ ticket: string; expiresAt: string }>(key, "POST", `/threads/${id}/tickets`).then((r) => r.ticket),
  uploadDocument: (key: string, doc: { title: string; text: string; source?: string }) =>
    call<{ documents: { id: string; title: string; chunkCount: number }[] }>(key, "POST", "/documents", doc).then((r) => r.documents[0]!),
  listDocuments: (key: string) => call<{ items: DocumentInfo[] }>(key, "GET", "/documents?limit=100").then((r) => r.items),
  deleteDocument: (key: string, id: string) => call<void>(key, "DELETE", `/documents/${id}`),
  /** Messages of the caller's threads; a server without message search answers 422 (the parameter is unknown), which callers treat as "not available". */
  searchMessages: (key: string, q: string) =>
    call<{ results: MessageHit[] }>(key, "GET", `/search?scope=messages&limit=20&q=${encodeURIComponent(q)}`).then((r) => r.results.filter((h) => h.threadId && h.messageId)),
  approvals: (key: string, threadId: string) => call<{ approvals: ApprovalInfo[] }>(key, "GET", `/threads/${threadId}/approvals?status=all`).then((r) => r.approvals),
  listMcpServers: (key: string) => call<{ items: McpServer[] }>(key, "GET", "/mcp-servers").then((r) => r.items),
  addMcpServer: (key: string, body: { name: string; url: string; token?: string; threadId?: string }) =>
    call<{ server: McpServer }>(key, "POST", "/mcp-servers", body).then((r) => r.server),
  removeMcpServer: (key: string, id: string) => call<void>(key, "DELETE", `/mcp-servers/${id}`),
  testMcpServer: (key: string, id: string) => call<{ result: McpProbe }>(key, "POST", `/mcp-servers/${id}/test`).then((r) => r.result),
};

/** The ingestion API refuses bodies over 64 KiB; checked before sending so the page can say why. */
export const MAX_UPLOAD_BYTES = 64 * 1024;

const KEY_STORAGE = "threadline.apiKey";
export const storedKey = () => localStorage.getItem(KEY_STORAGE);
export const storeKey = (key: string | null) => (key ? localStorage.setItem(KEY_STORAGE, key) : localStorage.removeItem(KEY_STORAGE));

export const threadTitle = (t: Pick<Thread, "title">) => t.title?.trim() || "Untitled thread";

/** Questions a document suggests asking (the demo documents carry some in `metadata.questions`), else one about the document itself. */
export function suggestions(docs: DocumentInfo[], max = 4): string[] {
  const asked = docs.flatMap((d) => {
    const q = (d.metadata as { questions?: unknown } | null)?.questions;
    return Array.isArray(q) ? q.filter((x): x is string => typeof x === "string").slice(0, 1) : [];
  });
  const about = asked.length ? [] : docs.map((d) => `What does “${d.title}” say?`);
  return [...asked, ...about].slice(0, max);
}
