import type { AgentMcpOAuthProvider } from "agents";
import type { MCPClientManager } from "agents/mcp/client";
import type { ToolSet } from "ai";
import { getConfig } from "../config.ts";
import type { McpServerRow } from "../db/schema.ts";
import type { Flags } from "../flags/index.ts";
import { describeError, log } from "../observability/log.ts";
import { isTransient, withTimeout } from "../resilience.ts";
import { threadMcpServers } from "./registry.ts";
import { openToken, tokenSecret } from "./secrets.ts";
import { McpFailure, mcpTools, MAX_TOOLS_PER_SERVER, type CatalogTool, type McpCaller } from "./tools.ts";
import { checkMcpUrl } from "./url-policy.ts";

type Host = { env: Env; threadId: () => string; mcp: MCPClientManager; storage: DurableObjectStorage };

// This object's storage: a server's sealed token (never the token), and the tools it last listed.
const tokenKey = (id: string) => `tl_mcp_token:${id}`;
const catalogKey = (id: string) => `tl_mcp_catalog:${id}`;
/** Marks, as the SDK's stored callback URL, a server whose requests carry its owner's token (see tokenAuth). Never fetched. */
const TOKEN_CALLBACK = "https://threadline.invalid/mcp/bearer-token";

const remaining = (deadline: number) => Math.max(0, deadline - Date.now());
/** A server whose tools are not known yet and that let a connection attempt run out of time is not tried again for this long. */
const SILENT_SERVER_PAUSE_MS = 60_000;

/**
 * A thread agent's MCP servers, on the SDK's client (`this.mcp`, which keeps each connection in the
 * agent's SQLite and restores it after hibernation). Before every turn the servers the SDK holds are
 * made the owner's registrations for this thread; each server's tool list is kept, so its tools are
 * offered (and fail readably) while it is down or still reconnecting. Connections are made when a
 * new server is added and again, within the call's deadline, when a tool call finds one not ready.
 */
export class ThreadMcpServers implements McpCaller {
  readonly #connecting = new Map<string, Promise<void>>();
  readonly #pausedUntil = new Map<string, number>();

  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /** The tools of this thread's MCP servers for one turn. Never throws: without them the turn goes on. */
  async tools(ownerId: string, flags: Flags): Promise<ToolSet> {
    const config = getConfig(this.host.env);
    try {
      const wanted = await threadMcpServers(this.host.env, ownerId, this.host.threadId());
      if (wanted) await this.#reconcile(wanted);
      const servers = await Promise.all(this.host.mcp.listServers().map(async (s) => ({ id: s.id, name: s.name, tools: await this.#tools(s.id) })));
      const harness = { config, threadId: this.host.threadId(), storage: this.host.storage, rateLimit: flags.mcp_rate_limit };
      return mcpTools(this, servers, harness);
    } catch (err) {
      log("error", "mcp_tools_failed", { threadId: this.host.threadId(), error: describeError(err) });
      return {};
    }
  }

  async call(serverId: string, tool: string, args: unknown, opts: { signal?: AbortSignal; deadline: number; reconnect: boolean }) {
    await this.#ready(serverId, opts.deadline, opts.reconnect);
    return this.host.mcp.callTool({ serverId, name: tool, arguments: args as Record<string, unknown> }, { signal: opts.signal, timeout: Math.max(1, remaining(opts.deadline)) });
  }

  /**
   * A call that ran out of time may still hold its request open: a 2025-era server is told of the
   * cancellation, not the request's end. Closing the client ends its requests; the next call connects again.
   */
  async abandon(serverId: string) {
    const conn = this.host.mcp.mcpConnections[serverId];
    if (!conn) return;
    await conn.client.close().catch(() => {});
    conn.connectionState = "failed";
  }

  /**
   * The SDK's auth provider for every server (OAuth is never used, so a server's URL cannot send
   * this agent to fetch authorization metadata elsewhere): each request carries the server's token,
   * opened from its sealed copy in this object's storage, or none.
   */
  tokenAuth(): AgentMcpOAuthProvider {
    const { env, storage } = this.host;
    const provider = {
      serverId: "",
      token: async () => {
        const sealed = await storage.get<string>(tokenKey(provider.serverId));
        return sealed ? openToken(tokenSecret(getConfig(env)), provider.serverId, sealed) : undefined;
      },
      invalidateCredentials: async () => void (await storage.delete(tokenKey(provider.serverId))),
    };
    return provider as unknown as AgentMcpOAuthProvider;
  }

  /** The SDK's servers made the registrations the URL policy passes now (a narrowed allow-list drops some). */
  async #reconcile(rows: McpServerRow[]) {
    const { MCP_ALLOWED_ORIGINS } = getConfig(this.host.env);
    const wanted = rows.filter((r) => {
      const verdict = checkMcpUrl(r.url, MCP_ALLOWED_ORIGINS);
      if (!verdict.ok) log("warn", "mcp_server_refused", { threadId: this.host.threadId(), serverId: r.id, reason: verdict.reason });
      return verdict.ok;
    });
    const held = new Set(this.host.mcp.listServers().map((s) => s.id));
    const ids = new Set(wanted.map((r) => r.id));
    for (const id of held) if (!ids.has(id)) await this.#remove(id);
    await Promise.all(wanted.filter((r) => !held.has(r.id)).map((r) => this.#add(r)));
  }

  async #add(row: McpServerRow) {
    const config = getConfig(this.host.env);
    if (row.tokenCiphertext) await this.host.storage.put(tokenKey(row.id), row.tokenCiphertext);
    try {
      await this.host.mcp.registerServer(row.id, {
        url: row.url,
        name: row.name,
        callbackUrl: row.tokenCiphertext ? TOKEN_CALLBACK : undefined,
        transport: { type: "streamable-http" },
        // Kept with the server, so connections restored on waking give up on a silent server in time too.
        client: { versionNegotiation: { mode: "auto", probe: { timeoutMs: config.MCP_TIMEOUT_MS, maxRetries: 0 } } },
        retry: { maxAttempts: 1 + config.MCP_RETRIES, baseDelayMs: 200, maxDelayMs: 2000 },
      });
    } catch (err) {
      log("warn", "mcp_register_failed", { threadId: this.host.threadId(), serverId: row.id, error: describeError(err) });
    }
  }

  async #remove(id: string) {
    try {
      // Closing may reach the server (ending its session): a hung one must not hold up the turn.
      await withTimeout(this.host.mcp.removeServer(id), getConfig(this.host.env).MCP_TIMEOUT_MS, () => new Error("timed out closing the connection"));
      await this.host.storage.delete([catalogKey(id), tokenKey(id)]);
    } catch (err) {
      log("warn", "mcp_remove_failed", { threadId: this.host.threadId(), serverId: id, error: describeError(err) });
    }
  }

  /**
   * A server's tools for a turn: those it lists now when connected, else those it listed last. One
   * whose tools are not known yet (just added, or never reached) is connected first, within the deadline.
   */
  async #tools(id: string): Promise<CatalogTool[]> {
    const ready = this.host.mcp.mcpConnections[id]?.connectionState === "ready";
    if (!ready && !(await this.host.storage.get(catalogKey(id))) && (this.#pausedUntil.get(id) ?? 0) <= Date.now())
      await this.#ready(id, Date.now() + getConfig(this.host.env).MCP_TIMEOUT_MS, false).catch((err: unknown) => {
        if (err instanceof McpFailure && err.status === "timeout") this.#pausedUntil.set(id, Date.now() + SILENT_SERVER_PAUSE_MS);
        log("warn", "mcp_connect_failed", { threadId: this.host.threadId(), serverId: id, error: describeError(err) });
      });
    return this.#catalog(id);
  }

  /** The tools the server lists now when connected (kept for later), else those it listed last. */
  async #catalog(id: string): Promise<CatalogTool[]> {
    const conn = this.host.mcp.mcpConnections[id];
    const kept = await this.host.storage.get<CatalogTool[]>(catalogKey(id));
    if (conn?.connectionState !== "ready") return kept ?? [];
    const tools = conn.tools.slice(0, MAX_TOOLS_PER_SERVER).map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema as Record<string, unknown> }));
    if (JSON.stringify(tools) !== JSON.stringify(kept)) await this.host.storage.put(catalogKey(id), tools);
    return tools;
  }

  /** Connected and discovered within the deadline, or an McpFailure; one connection attempt per server at a time. */
  async #ready(id: string, deadline: number, reconnect: boolean) {
    const state = () => this.host.mcp.mcpConnections[id]?.connectionState;
    if (!this.host.mcp.mcpConnections[id]) throw new McpFailure("mcp_unavailable", "the server is not registered on this thread");
    // A connection the SDK is restoring after hibernation: wait for it rather than start another.
    if (state() === "connecting" || state() === "discovering") await this.host.mcp.waitForConnections({ timeout: remaining(deadline) });
    if (state() === "ready" && !reconnect) return;
    let attempt = this.#connecting.get(id);
    if (!attempt) {
      attempt = this.#connect(id).finally(() => this.#connecting.delete(id));
      this.#connecting.set(id, attempt);
    }
    try {
      await withTimeout(attempt, remaining(deadline), () => new McpFailure("timeout", "the server did not answer in time"));
    } catch (err) {
      if (err instanceof McpFailure && err.status === "timeout") await this.abandon(id);
      throw err;
    }
  }

  async #connect(id: string) {
    const { mcp } = this.host;
    const connected = await mcp.connectToServer(id);
    if (connected.state !== "connected") {
      // A 401 ends in the SDK's OAuth path, which has nothing to go on here.
      const error =
        connected.state === "failed" && !connected.error.includes("OAuth") ? connected.error : "the server refused the credentials: register it with a token it accepts";
      throw new McpFailure("mcp_unavailable", error, isTransient(new Error(error)));
    }
    const discovered = await mcp.discoverIfConnected(id, { timeoutMs: getConfig(this.host.env).MCP_TIMEOUT_MS });
    if (!discovered?.success) throw new McpFailure("mcp_unavailable", discovered?.error ?? "the server's tools could not be listed", true);
    await this.#catalog(id);
  }
}
