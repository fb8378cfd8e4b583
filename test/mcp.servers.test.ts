import { describe, expect, it } from "vitest";
import { withDb } from "../src/db/client.ts";
import { getMcpServer } from "../src/db/mcp-servers.ts";
import { env } from "./support/env.ts";
import { fetchApp, threadsForEachTest } from "./support/helpers.ts";
import { addMcpServer, registerMcpServer, testMcp, testMcpServer, type McpServerJson } from "./support/mcp.ts";

const newThread = threadsForEachTest();
const list = async (apiKey: string) => ((await (await fetchApp("/api/v1/mcp-servers", {}, apiKey)).json()) as { items: McpServerJson[] }).items;
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

describe("MCP servers over the API", () => {
  it("registers, lists, tests and deletes a server: only its owner sees it; the token is sealed and never returned", async () => {
    const [alice, bob] = await Promise.all([newThread(), newThread()]);
    const mcp = testMcpServer();
    await mcp.set({ token: "alice-secret-token" });
    const server = await addMcpServer(alice.apiKey, { name: "notes", url: mcp.url, token: "alice-secret-token" });
    expect(server).toMatchObject({ name: "notes", url: mcp.url, threadId: null, hasToken: true });
    expect(JSON.stringify(server)).not.toContain("alice-secret-token");
    const row = await withDb(env, (db) => getMcpServer(db, server.id));
    expect(row!.tokenCiphertext).toMatch(/^v1\./);
    expect(row!.tokenCiphertext).not.toContain("alice-secret-token");

    expect(await list(alice.apiKey)).toEqual([server]);
    expect(await list(bob.apiKey)).toEqual([]);
    const tested = await testMcp(alice.apiKey, server.id);
    expect(tested.status).toBe(200);
    const { result } = (await tested.json()) as { result: { status: string; tools: { name: string; toolName: string }[] } };
    expect(result.status).toBe("ok");
    expect(result.tools.map((t) => [t.name, t.toolName])).toEqual(
      expect.arrayContaining([
        ["echo", "mcp_notes_echo"],
        ["get.info", "mcp_notes_get_info"],
      ]),
    );
    expect((await mcp.seen()).requests).toBeGreaterThan(0);

    // Another user's server is the same 404 as none, for every route.
    for (const res of [await testMcp(bob.apiKey, server.id), await fetchApp(`/api/v1/mcp-servers/${server.id}`, { method: "DELETE" }, bob.apiKey)]) {
      expect(res.status).toBe(404);
      expect((await errorOf(res)).code).toBe("mcp_server_not_found");
    }
    expect((await fetchApp(`/api/v1/mcp-servers/${server.id.toUpperCase()}`, { method: "DELETE" }, alice.apiKey)).status).toBe(204);
    expect(await list(alice.apiKey)).toEqual([]);
    expect((await testMcp(alice.apiKey, server.id)).status).toBe(404);
    expect((await fetchApp("/api/v1/mcp-servers/not-a-uuid", { method: "DELETE" }, alice.apiKey)).status).toBe(404);
  });

  it("a test names what is wrong: refused credentials, a server that is down, one that does not answer in time", async () => {
    const { apiKey } = await newThread();
    const mcp = testMcpServer();
    const server = await addMcpServer(apiKey, { name: "flaky", url: mcp.url });
    const result = async () => ((await (await testMcp(apiKey, server.id)).json()) as { result: { status: string; message?: string } }).result;
    await mcp.set({ token: "needed" });
    expect(await result()).toMatchObject({ status: "mcp_unavailable", message: expect.stringMatching(/401|unauthori[sz]ed/i) });
    await mcp.set({ token: null, mode: "down" });
    expect((await result()).status).toBe("mcp_unavailable");
    await mcp.set({ mode: "hang" });
    expect(await result()).toEqual({ status: "timeout", message: expect.stringMatching(/within 3000 ms/) });
    await mcp.set({ mode: "up" });
    expect((await result()).status).toBe("ok");
  });

  it("refuses URLs outside the policy: http, local and private hosts, credentials in the URL", async () => {
    const { apiKey } = await newThread();
    const refused = [
      "http://example.com/mcp",
      "https://localhost/mcp",
      "https://mcp.localhost/mcp",
      "https://127.0.0.1/mcp",
      "https://10.1.2.3/mcp",
      "https://169.254.169.254/latest/meta-data",
      "https://[::1]/mcp",
      "https://[fd00::1]/mcp",
      "https://[::ffff:192.168.0.1]/mcp",
      "https://2130706433/mcp",
      "https://intranet/mcp",
      "https://user:pass@example.com/mcp",
      "ftp://example.com/mcp",
      "not a url",
      // The test server's host, but not its allow-listed origin (another port).
      "http://127.0.0.1:1/mcp",
    ];
    for (const url of refused) {
      const res = await registerMcpServer(apiKey, { name: "bad", url });
      expect([url, res.status]).toEqual([url, 422]);
      expect((await errorOf(res)).message).toMatch(/^url refused: /);
    }
    expect(await list(apiKey)).toEqual([]);
    // Public https hosts pass (nothing is fetched at registration).
    expect((await registerMcpServer(apiKey, { name: "public", url: "https://mcp.example.com/mcp" })).status).toBe(201);
  });

  it("validates the body, the thread (yours), the name (once per user) and who asks", async () => {
    const [alice, bob] = await Promise.all([newThread(), newThread()]);
    const { url } = testMcpServer();
    for (const body of [{ name: "Bad Name", url }, { name: "ok", url, token: "has space" }, { name: "ok", url, extra: 1 }, { url }, { name: "x".repeat(25), url }])
      expect((await registerMcpServer(alice.apiKey, body)).status).toBe(422);
    const scoped = await registerMcpServer(alice.apiKey, { name: "scoped", url, threadId: bob.threadId });
    expect(scoped.status).toBe(404);
    expect((await errorOf(scoped)).code).toBe("thread_not_found");
    expect(await addMcpServer(alice.apiKey, { name: "scoped", url, threadId: alice.threadId })).toMatchObject({ threadId: alice.threadId });
    const again = await registerMcpServer(alice.apiKey, { name: "scoped", url });
    expect(again.status).toBe(409);
    expect((await errorOf(again)).message).toMatch(/already have an MCP server named scoped/);
    // Names are per user: Bob's may be the same.
    expect((await registerMcpServer(bob.apiKey, { name: "scoped", url })).status).toBe(201);
    expect((await registerMcpServer(null, { name: "anon", url })).status).toBe(401);
    const admin = await registerMcpServer(env.ADMIN_TOKEN, { name: "admin", url });
    expect(admin.status).toBe(403);
    expect((await fetchApp("/api/v1/mcp-servers")).status).toBe(403);
  });

  it("holds at most 20 servers per user", async () => {
    const { apiKey } = await newThread();
    const { url } = testMcpServer();
    for (let i = 0; i < 20; i++) expect((await registerMcpServer(apiKey, { name: `s${i}`, url })).status).toBe(201);
    const over = await registerMcpServer(apiKey, { name: "s20", url });
    expect(over.status).toBe(422);
    expect((await errorOf(over)).code).toBe("quota_exceeded");
  });

  it("is in the OpenAPI document", async () => {
    const doc = (await (await fetchApp("/api/v1/openapi.json", {}, null)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/api/v1/mcp-servers"]!).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/api/v1/mcp-servers/{id}"]!)).toEqual(["delete"]);
    expect(Object.keys(doc.paths["/api/v1/mcp-servers/{id}/test"]!)).toEqual(["post"]);
  });
});
