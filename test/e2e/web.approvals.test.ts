import { describe, expect, inject, test } from "vitest";
import type { Page } from "playwright-core";
import { ADMIN_TOKEN, chromiumAvailable, openChat, shot, stackForFile } from "./support.ts";

// The offline model (no key) asked to remember something calls save_note, and asked a question calls every
// tool that takes a query, an MCP server's too (the suite's test MCP server, on 127.0.0.1: the allow-list
// lets the URL policy pass it): each call waits for the owner's decision in the page.
let mcpUrl: string;

const run = chromiumAvailable();

describe.skipIf(!run)("tool approvals and MCP servers in the web page, in Chromium", () => {
  const e2e = stackForFile("approvals", () => {
    mcpUrl = inject("mcpServerUrl");
    return { TURN_RATE_LIMIT: "30", MCP_ALLOWED_ORIGINS: mcpUrl, MCP_TIMEOUT_MS: "5000" };
  });
  async function user(label: string, title: string) {
    const u = await e2e.newUser(label);
    return { u, thread: (await u.api("POST", "/api/v1/threads", { title })).thread.id as string };
  }
  const composer = (page: Page) => page.getByRole("textbox", { name: "Message" });
  const assistant = (page: Page) => page.locator("article.message.assistant").last();
  async function send(page: Page, text: string) {
    await composer(page).fill(text);
    await composer(page).press("Enter");
  }
  const outcome = (card: ReturnType<Page["locator"]>) => card.getByTestId("tool-outcome").innerText();

  test("save_note waits on a card that survives a reload; Approve saves and the reply goes on; a delete denied is Declined; unanswered it Expires", async () => {
    const { u, thread } = await user("approve", "e2e approvals");
    const [receipts] = (await u.api("POST", "/api/v1/documents", { title: "Old receipts", text: "Receipts from the spring trip." })).documents;
    const page = await openChat(await e2e.newContext({ viewport: { width: 1280, height: 900 } }), e2e.base, u, thread);
    await send(page, "Remember that the office wifi password is tangerine42");
    const card = page.locator('[data-tool="save_note"]').first();
    await expect.poll(() => card.locator(".tool-what").innerText(), { timeout: 20_000 }).toBe("Save a note: the office wifi password is tangerine42");
    await expect.poll(() => outcome(card)).toBe("Needs your approval");
    await expect.poll(() => card.locator(".approval-actions").innerText()).toMatch(/Allow this\? Expires in (59|60) min\./);
    // The input, collapsed until asked for.
    expect(await card.getByLabel("Input").isVisible()).toBe(false);
    await card.locator(".tool-head").click();
    expect(JSON.parse(await card.getByLabel("Input").innerText())).toEqual({ title: "the office wifi password is tangerine42", text: "the office wifi password is tangerine42" });
    await shot(page, "approval-pending");

    // The transcript the agent sends on connect keeps the call waiting: the card is back, still undecided.
    await page.reload();
    await expect.poll(() => outcome(card)).toBe("Needs your approval");
    await card.getByRole("button", { name: "Approve" }).click();
    await expect.poll(() => outcome(card), { timeout: 20_000 }).toBe("Approved · saved");
    expect(await card.getByRole("button", { name: /^(Approve|Deny)$/ }).count()).toBe(0);
    await expect.poll(() => assistant(page).innerText(), { timeout: 20_000 }).toContain('I saved your note "the office wifi password is tangerine42"');
    await expect.poll(() => assistant(page).getAttribute("data-streaming")).toBeNull();
    await card.locator(".tool-head").click();
    expect(JSON.parse(await card.getByLabel("Result").innerText())).toMatchObject({ status: "ok", title: "the office wifi password is tangerine42" });
    const approvals = async () => (await u.api("GET", `/api/v1/threads/${thread}/approvals?status=all`)).approvals as { toolName: string; status: string }[];
    expect((await approvals()).map((a) => a.status)).toEqual(["approved"]);
    expect((await u.api("GET", "/api/v1/documents")).items.map((d: { title: string }) => d.title)).toContain("the office wifi password is tangerine42");
    await shot(page, "approval-approved");

    // A delete names the document by its title; denied, nothing is deleted.
    await send(page, `Please delete the document ${receipts.id}`);
    const second = page.locator('[data-tool="delete_document"]');
    await expect.poll(() => second.locator(".tool-what").innerText(), { timeout: 20_000 }).toBe("Delete the document “Old receipts”");
    await expect.poll(() => outcome(second)).toBe("Needs your approval");
    await second.getByRole("button", { name: "Deny" }).click();
    await expect.poll(() => outcome(second)).toBe("Declined");
    await expect.poll(() => assistant(page).innerText(), { timeout: 20_000 }).toContain("you declined delete_document, so I did not do it.");
    expect(await second.getByRole("button", { name: /^(Approve|Deny)$/ }).count()).toBe(0);
    expect((await approvals()).map((a) => a.status)).toEqual(["approved", "denied"]);
    expect((await u.api("GET", "/api/v1/documents")).items.map((d: { id: string }) => d.id)).toContain(receipts.id);
    expect(await outcome(card)).toBe("Approved · saved");

    // Nobody decides: when its time is up the call is denied, and the card says it expired.
    const flag = await fetch(`${e2e.base}/api/v1/admin/threads/${thread}/flags/approval_ttl_seconds`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ value: 3 }),
    });
    expect(flag.status).toBe(200);
    await send(page, "remember that the boiler is serviced in May");
    const third = page.locator('[data-tool="save_note"]').nth(1);
    await expect.poll(() => third.locator(".tool-what").innerText(), { timeout: 20_000 }).toBe("Save a note: the boiler is serviced in May");
    await expect.poll(() => outcome(third), { timeout: 20_000 }).toBe("Expired");
    expect(await third.getByRole("button", { name: /^(Approve|Deny)$/ }).count()).toBe(0);
    expect((await approvals()).map((a) => a.status)).toEqual(["approved", "denied", "expired"]);
    await shot(page, "approval-declined-expired");
  });

  test("MCP servers at 375 px: a refused URL says why; add one for a thread with a token, test it, approve its tool in the chat, remove it", async () => {
    const { u, thread } = await user("mcp", "e2e mcp");
    const root = `${mcpUrl}/s/${crypto.randomUUID()}`;
    // The server wants the token: a test that lists its tools shows the token reached it.
    await fetch(`${root}/state`, { method: "POST", body: JSON.stringify({ token: "s3cret-token" }) });
    const page = await openChat(await e2e.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true }), e2e.base, u, thread);
    await page.getByRole("button", { name: "MCP servers" }).click();
    const dialog = page.getByRole("dialog", { name: "Your MCP servers" });
    await expect.poll(() => dialog.getByText("No MCP servers yet").isVisible()).toBe(true);
    const form = dialog.getByRole("form", { name: "Add a server" });
    const status = form.getByRole("status");
    await form.getByLabel("Name").fill("intranet");
    await form.getByLabel("URL").fill("http://10.1.2.3/mcp");
    await form.getByRole("button", { name: "Add server" }).click();
    await expect.poll(() => status.innerText()).toMatch(/^url refused: /);
    expect(await status.getAttribute("class")).toBe("form-error");

    await form.getByLabel("Name").fill("facts");
    await form.getByLabel("URL").fill(`${root}/mcp`);
    await form.getByLabel("Bearer token (optional)").fill("s3cret-token");
    await form.getByLabel("Used in").selectOption({ label: "e2e mcp" });
    await form.getByRole("button", { name: "Add server" }).click();
    await expect.poll(() => status.innerText()).toBe("Added facts. Test it to see its tools.");
    const list = dialog.getByRole("list", { name: "MCP servers" });
    await expect.poll(() => list.innerText()).toContain("Only in “e2e mcp” · with a token");
    const [server] = (await u.api("GET", "/api/v1/mcp-servers")).items;
    expect(server).toMatchObject({ name: "facts", url: `${root}/mcp`, threadId: thread, hasToken: true });
    await list.getByRole("button", { name: "Test facts" }).click();
    await expect.poll(() => list.getByRole("status", { name: "Test of facts" }).innerText()).toBe("Connected: 5 tools: echo, lookup, slow, fail, get.info.");
    const box = (await dialog.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(375);
    expect(await dialog.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
    await shot(page, "mcp-servers-phone");
    await dialog.getByRole("button", { name: "Close" }).click();

    // In its thread the model calls its lookup tool, after the owner approves.
    await send(page, "what is the capital of Portugal?");
    const card = page.locator('[data-tool="mcp_facts_lookup"]');
    await expect.poll(() => card.locator(".tool-what").innerText(), { timeout: 20_000 }).toBe("Call lookup on MCP server facts");
    await expect.poll(() => outcome(card)).toBe("Needs your approval");
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375);
    await shot(page, "mcp-approval-phone");
    await card.getByRole("button", { name: "Approve" }).click();
    await expect.poll(() => outcome(card), { timeout: 20_000 }).toBe("Approved · done");
    await expect.poll(() => assistant(page).innerText(), { timeout: 20_000 }).toContain("facts about: what is the capital of Portugal?");
    expect(((await (await fetch(`${root}/calls`)).json()) as { calls: unknown[] }).calls).toEqual([
      { tool: "lookup", args: { query: "what is the capital of Portugal?" }, authorization: "Bearer s3cret-token" },
    ]);

    await page.getByRole("button", { name: "MCP servers" }).click();
    await list.getByRole("button", { name: "Remove facts" }).click();
    await list.getByRole("button", { name: "Remove", exact: true }).click();
    await expect.poll(() => dialog.getByText("No MCP servers yet").isVisible()).toBe(true);
    await expect.poll(() => form.getByRole("status").innerText()).toBe("Removed facts.");
    expect((await u.api("GET", "/api/v1/mcp-servers")).items).toEqual([]);
  });
});
