import { exports } from "cloudflare:workers";
import { env } from "./env.ts";
import { afterEach } from "vitest";
import { asc, eq } from "drizzle-orm";
import { withDb } from "../../src/db/client.ts";
import { messages } from "../../src/db/schema.ts";
import { deleteUser } from "../../src/db/users.ts";
import { TEST_EMAIL_DOMAIN } from "../../src/db/users.ts";

export const BASE = "http://threadline.test";

const app = (exports as unknown as { default: Fetcher }).default;

/** The test projects' ADMIN_TOKEN: requests act as the admin unless a test passes a user's key or null. */
export const ADMIN_TOKEN = env.ADMIN_TOKEN;

export function fetchApp(path: string, init: RequestInit = {}, token: string | null = ADMIN_TOKEN) {
  const headers = new Headers(init.headers);
  if (token !== null && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
  return app.fetch(new Request(`${BASE}${path}`, { ...init, headers }));
}

export const sendJson = (method: string, path: string, body: unknown, token: string | null = ADMIN_TOKEN) =>
  fetchApp(path, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) }, token);

export const postJson = (path: string, body: unknown, token: string | null = ADMIN_TOKEN) => sendJson("POST", path, body, token);

/** Reads until `ok` holds or the time is up, and returns the last value read (the caller asserts on it). */
export async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A turn over HTTP in JSON mode: the response holds the finished turn. */
export const httpTurn = (threadId: string, text: string, token: string | null = ADMIN_TOKEN) =>
  fetchApp(
    `/api/v1/threads/${threadId}/messages`,
    { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify({ text }) },
    token,
  );

export const uniqueEmail = () => `${crypto.randomUUID()}@${TEST_EMAIL_DOMAIN}`;

/** Creates a user and a thread through the API and returns a cleanup that deletes both (cascading). */
export async function createUserAndThread(title?: string, user: { tokenBudget?: number } = {}) {
  const userRes = await postJson("/api/v1/users", { email: uniqueEmail(), name: "Test", ...user });
  if (userRes.status !== 201) throw new Error(`user: ${userRes.status} ${await userRes.text()}`);
  const { user: created, apiKey } = (await userRes.json()) as { user: { id: string }; apiKey: string };
  const threadRes = await postJson("/api/v1/threads", { title }, apiKey);
  if (threadRes.status !== 201) {
    await removeUser(created.id);
    throw new Error(`thread: ${threadRes.status} ${await threadRes.text()}`);
  }
  const { thread } = (await threadRes.json()) as { thread: { id: string } };
  return { userId: created.id, apiKey, threadId: thread.id, cleanup: () => removeUser(created.id) };
}

/**
 * For a test file: returns a function that makes a user with a thread, and removes every user it
 * made (cascading to threads and messages) after each test.
 */
export function threadsForEachTest() {
  const made: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((cleanup) => cleanup()));
  });
  return async (title?: string, user?: { tokenBudget?: number }) => {
    const t = await createUserAndThread(title, user);
    made.push(t.cleanup);
    return t;
  };
}

/** Deletes a user through the API, as the admin would: cascades in Postgres and wipes the threads' agents. */
export async function removeUser(id: string) {
  const res = await fetchApp(`/api/v1/users/${id}`, { method: "DELETE" });
  // In the faults project Postgres may be cut when a test ends; fall back to the database module.
  if (res.status !== 204 && res.status !== 404) await withDb(env, (db) => deleteUser(db, id));
}

/** The thread's agent (its Durable Object stub). */
export const threadAgent = (threadId: string) => env.ThreadAgent.get(env.ThreadAgent.idFromName(threadId));

/**
 * The thread's rows in Postgres, once its agent has drained what it holds (writes reach Postgres in
 * the background; this is the read-your-writes the API's own reads do too).
 */
export async function messageRows(threadId: string, opts: { sync: boolean } = { sync: true }) {
  // A thread just deleted has a wiped (destroyed) agent: nothing left to drain.
  if (opts.sync)
    await threadAgent(threadId)
      .sync()
      .catch(() => {});
  return withDb(env, (db) => db.select().from(messages).where(eq(messages.threadId, threadId)).orderBy(asc(messages.seq)));
}

/**
 * Cuts, hangs or restores Postgres for the "faults" project, whose Hyperdrive goes through a TCP
 * proxy: down refuses connections, hung accepts them and never answers. Answers how many it holds.
 */
export const setDatabase = async (state: "up" | "down" | "hang") => (await (await fetch(`${env.FAULT_CONTROL_URL}/${state}`, { method: "POST" })).json()) as { held: number };
/** While hung: connections Postgres holds unanswered, and those their clients gave up on (timed out); `opened`: every connection passed on to Postgres so far. */
export const heldConnections = async () => (await (await fetch(`${env.FAULT_CONTROL_URL}/`)).json()) as { held: number; abandoned: number; opened: number };

export type Frame = Record<string, any>;

/** A WebSocket client of a thread agent that records every frame it receives. */
/** A WebSocket upgrade request to `path` with no Authorization header (the query carries any credential). */
export const upgrade = (path: string, headers: Record<string, string> = {}) => fetchApp(path, { headers: { Upgrade: "websocket", ...headers } }, null);

export class ChatClient {
  readonly frames: Frame[] = [];
  /** Settles when the server closes the socket (or it is closed here). */
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: (() => void)[] = [];

  readonly ws: WebSocket;
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener("message", (e) => {
      this.frames.push(JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer)));
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((r) => ws.addEventListener("close", (e) => r({ code: e.code, reason: e.reason })));
  }

  static connect(threadId: string, token: string = ADMIN_TOKEN): Promise<ChatClient> {
    return ChatClient.open(`/agents/thread-agent/${threadId}?token=${encodeURIComponent(token)}`);
  }

  /** Opens a socket at `path`; with `greeted` (the default) waits for the agent's greeting. */
  static async open(path: string, headers: Record<string, string> = {}, greeted = true): Promise<ChatClient> {
    const res = await upgrade(path, headers);
    if (!res.webSocket) throw new Error(`upgrade refused: ${res.status} ${await res.text()}`);
    res.webSocket.accept();
    const client = new ChatClient(res.webSocket);
    // The agent greets a connection once it is registered; before that, broadcasts can miss it.
    if (greeted) await client.waitFor((f) => f.type === "cf_agent_identity");
    return client;
  }

  send(frame: unknown) {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Sends a user message the way useAgentChat does: the whole transcript, as a chat request. */
  sendChat(text: string, history: unknown[] = [], id = crypto.randomUUID()) {
    const message = { id: `u-${crypto.randomUUID()}`, role: "user", parts: [{ type: "text", text }] };
    this.send({ type: "cf_agent_use_chat_request", id, init: { method: "POST", body: JSON.stringify({ messages: [...history, message], trigger: "submit-message" }) } });
    return { requestId: id, message };
  }

  async waitFor<T extends Frame>(pred: (f: Frame) => boolean, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.find(pred);
      if (hit) return hit as T;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; frames: ${JSON.stringify(this.frames.map((f) => f.type))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  /** The chunks of one chat response, in arrival order, once its done frame has arrived. */
  async response(requestId: string) {
    await this.waitFor((f) => f.type === "cf_agent_use_chat_response" && f.id === requestId && f.done);
    const frames = this.frames.filter((f) => f.type === "cf_agent_use_chat_response" && f.id === requestId);
    const chunks = frames.filter((f) => f.body).flatMap((f) => (f.error ? [] : [JSON.parse(f.body)]));
    const text = chunks
      .filter((c) => c.type === "text-delta")
      .map((c) => c.delta)
      .join("");
    return { frames, chunks, text, error: frames.find((f) => f.error) };
  }

  close() {
    this.ws.close(1000, "done");
  }
}
