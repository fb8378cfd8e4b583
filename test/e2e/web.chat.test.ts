import { describe, expect, test } from "vitest";
import type { Locator, Page } from "playwright-core";
import { ADMIN_TOKEN, chromiumAvailable, openChat, shot, stackForFile } from "./support.ts";

// Slow offline replies (a few seconds each) leave time to reload or cut the connection mid-reply;
// two turns a minute per user makes the rate limit reachable in one test. Each test has its own user.
const VARS = { OFFLINE_CHUNK_DELAY_MS: "90", TURN_RATE_LIMIT: "2", TURN_RATE_WINDOW_SECONDS: "60" };

const DOC = {
  title: "Lighthouse maintenance log",
  text: "The Fresnel lens of the Skerry Point lighthouse was cleaned and polished on 3 March. The rotation motor was replaced in April after it started to stall in cold weather. Keepers check the backup lamp every Sunday evening.",
};
const QUESTION = "When was the Fresnel lens of the Skerry Point lighthouse last cleaned and polished by the keepers?";

const run = chromiumAvailable();

describe.skipIf(!run)("web chat in Chromium", () => {
  const e2e = stackForFile("chat", () => VARS);

  async function user(label: string, opts: { doc?: boolean; thread?: boolean } = {}) {
    const u = await e2e.newUser(label);
    if (opts.doc) await u.api("POST", "/api/v1/documents", DOC);
    const thread = opts.thread ? ((await u.api("POST", "/api/v1/threads", { title: `e2e ${label}` })).thread.id as string) : undefined;
    return { u, thread };
  }

  // Page-side expressions as strings: this file is typed without the DOM library.
  const activeId = (page: Page) => page.evaluate<string | undefined>("document.activeElement?.id");
  const composer = (page: Page) => page.getByRole("textbox", { name: "Message" });
  const assistant = (page: Page) => page.locator("article.message.assistant").last();
  // The offline model's answer ends with its sources; a citation shows as its number.
  const finalReply = `Sources: 1 ${DOC.title}`;

  async function send(page: Page, text: string) {
    await composer(page).fill(text);
    await composer(page).press("Enter");
  }

  /** The reply's text once it is finished (no streaming marker, final words in). */
  async function finished(reply: Locator) {
    await expect.poll(() => reply.innerText(), { timeout: 20_000 }).toContain(finalReply);
    await expect.poll(() => reply.getAttribute("data-streaming"), { timeout: 10_000 }).toBeNull();
    return reply.innerText();
  }

  test("the Worker serves the page at / and keeps JSON 404s under /api and /agents", async () => {
    const page = await fetch(`${e2e.base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain('<div id="root"></div>');
    for (const path of ["/api/v1/nope", "/agents/thread-agent/00000000-0000-4000-8000-000000000000", "/api/v1/threads/00000000-0000-4000-8000-000000000000"]) {
      const res = await fetch(`${e2e.base}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code, path).toMatch(/not_found/);
    }
    expect((await fetch(`${e2e.base}/health`)).headers.get("content-type")).toContain("application/json");
  });

  test("upload a document, create a thread, send: the reply streams in with a search card citing it; rename and delete", async () => {
    const { u } = await user("stream");
    const context = await e2e.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await openChat(context, e2e.base, u);

    // The documents panel reads a picked file (its name becomes the title) and sends it to the ingestion API.
    await page.getByRole("button", { name: "Documents" }).click();
    const dialog = page.getByRole("dialog", { name: "Your documents" });
    await dialog.getByLabel("Text file").setInputFiles({ name: `${DOC.title}.txt`, mimeType: "text/plain", buffer: Buffer.from(DOC.text) });
    await expect.poll(() => dialog.getByLabel("Text", { exact: true }).inputValue()).toBe(DOC.text);
    expect(await dialog.getByLabel("Title").inputValue()).toBe(DOC.title);
    await dialog.getByRole("button", { name: "Upload" }).click();
    await expect.poll(() => dialog.getByRole("status").innerText()).toContain(`Added “${DOC.title}”`);
    expect((await u.api("GET", `/api/v1/search?q=${encodeURIComponent("Fresnel lens")}`)).results[0].title).toBe(DOC.title);
    await expect.poll(() => dialog.getByRole("list", { name: "Documents" }).innerText()).toContain(DOC.title);
    await shot(page, "upload-panel");
    await dialog.getByRole("button", { name: "Close" }).click();

    await page.getByRole("button", { name: "New thread" }).first().click();
    await expect.poll(() => activeId(page)).toBe("composer");
    await send(page, QUESTION);
    await expect.poll(() => page.locator("article.message.user").last().innerText()).toContain(QUESTION);

    const reply = assistant(page);
    const card = reply.locator('[data-tool="hybrid_search"]');
    await expect.poll(() => card.locator(".tool-query").innerText(), { timeout: 15_000 }).toBe(QUESTION);
    // Collapsed to one line: the query and how many passages it found.
    await expect.poll(() => card.locator(".tool-count").innerText()).toBe("1 passage");
    expect(await card.locator(".hit-title").isVisible()).toBe(false);

    // Caught mid-stream: some words in, still streaming.
    await expect.poll(() => reply.innerText(), { timeout: 15_000 }).toContain("Offline model:");
    const partial = await reply.locator(".markdown").innerText();
    expect(await reply.getAttribute("data-streaming")).toBe("true");
    await shot(page, "reply-streaming");
    const full = await finished(reply);
    expect(full.length).toBeGreaterThan(partial.length);
    expect(partial.length).toBeLessThan((await reply.locator(".markdown").innerText()).length);
    // It quotes the sentence that answers, citing the passage; the citation opens the card at that passage.
    expect(full).toContain("The Fresnel lens of the Skerry Point lighthouse was cleaned and polished on 3 March.");
    await expect.poll(() => reply.locator(".badge.offline").innerText()).toBe("Offline model");
    await expect.poll(() => page.getByTestId("offline-note").isVisible()).toBe(true);
    await reply.getByRole("link", { name: "Source 1" }).first().click();
    await expect.poll(() => card.locator(".tool-head").getAttribute("aria-expanded")).toBe("true");
    await expect.poll(() => card.locator(".hit.cited .hit-title").innerText()).toBe(DOC.title);
    expect(await card.locator(".hit-snippet").first().innerText()).toContain("Fresnel lens");
    await expect.poll(() => activeId(page).then(() => page.evaluate<string | null>("document.activeElement?.dataset.passage ?? null"))).toBe("1");
    await shot(page, "reply-finished");

    // Stop ends a reply where it is; the page is ready for the next message.
    await send(page, "Tell me more about the rotation motor and the backup lamp that the keepers check");
    const second = assistant(page);
    await expect.poll(() => page.locator("article.message.assistant").count()).toBe(2);
    await expect.poll(() => second.locator(".markdown").innerText()).toContain("Offline model:");
    await page.getByRole("button", { name: "Stop" }).click();
    await expect.poll(() => second.getAttribute("data-streaming")).toBeNull();
    await expect.poll(() => page.getByRole("button", { name: "Send" }).isVisible()).toBe(true);
    // Marked as stopped, here and in what the server keeps.
    await expect.poll(() => second.getByTestId("stopped").innerText()).toBe("Stopped");
    const stopped = await second.locator(".markdown").innerText();
    expect(stopped).not.toContain(finalReply);
    const [thread] = (await u.api("GET", "/api/v1/threads")).items;
    await expect.poll(async () => (await u.api("GET", `/api/v1/threads/${thread.id}/messages`)).messages.at(-1).metadata?.outcome).toBe("stopped");
    expect(await second.locator(".markdown").innerText()).toBe(stopped);

    // The first message named the thread; rename and delete it from the list.
    const threads = page.getByRole("navigation", { name: "Threads" });
    await expect.poll(() => threads.locator(".thread-item.current .thread-title").innerText()).toContain("When was the Fresnel lens");
    await threads.getByRole("button", { name: /^Rename / }).click();
    await threads.getByRole("textbox").fill("Lighthouse questions");
    await threads.getByRole("textbox").press("Enter");
    await expect.poll(async () => (await u.api("GET", `/api/v1/threads/${thread.id}`)).thread.title).toBe("Lighthouse questions");
    await expect.poll(() => page.getByRole("heading", { level: 2 }).first().innerText()).toBe("Lighthouse questions");
    await threads.getByRole("button", { name: "Delete Lighthouse questions" }).click();
    await threads.getByRole("button", { name: "Delete", exact: true }).click();
    await expect.poll(async () => (await u.api("GET", "/api/v1/threads")).items.length).toBe(0);
    await expect.poll(() => threads.getByText("No threads yet.").isVisible()).toBe(true);
    // Its document goes the same way, from the documents panel.
    await page.getByRole("button", { name: "Documents" }).click();
    await dialog.getByRole("button", { name: `Delete ${DOC.title}` }).click();
    await dialog.getByRole("button", { name: "Delete", exact: true }).click();
    await expect.poll(() => dialog.getByText("No documents yet").isVisible()).toBe(true);
    expect((await u.api("GET", "/api/v1/documents")).items).toEqual([]);
  });

  test("a reload in the middle of a reply resumes the stream", async () => {
    const { u, thread } = await user("reload", { doc: true, thread: true });
    const context = await e2e.newContext();
    const page = await openChat(context, e2e.base, u, thread);
    await send(page, QUESTION);
    await expect.poll(() => assistant(page).locator(".markdown").innerText(), { timeout: 15_000 }).toContain("Offline model:");
    expect(await assistant(page).getAttribute("data-streaming")).toBe("true");

    await page.reload();
    // Back on the page while the turn still runs: the reply is live again, then completes.
    await expect.poll(() => assistant(page).getAttribute("data-streaming"), { timeout: 10_000 }).toBe("true");
    await shot(page, "reload-resumed");
    const text = await finished(assistant(page));
    await shot(page, "reload-finished");
    expect(text.split("Offline model:").length).toBe(2);
    expect(await page.locator("article.message.assistant").count()).toBe(1);
    expect(await page.locator('[data-tool="hybrid_search"]').count()).toBe(1);
    const stored = (await u.api("GET", `/api/v1/threads/${thread}/messages`)).messages.at(-1);
    const storedText = stored.parts
      .filter((p: { type: string }) => p.type === "text")
      .map((p: { text: string }) => p.text)
      .join("");
    // The page shows the stored markdown rendered: a quote without its "> ", a citation [1] as its number.
    const rendered = storedText.replace(/^> /gm, "").replace(/\[(\d+)\]/g, "$1");
    expect((await assistant(page).locator(".markdown").innerText()).replace(/\s+/g, " ").trim()).toBe(rendered.replace(/\s+/g, " ").trim());
  });

  test("a connection lost mid-reply reconnects and resumes the stream", async () => {
    const { u, thread } = await user("drop", { doc: true, thread: true });
    const context = await e2e.newContext();
    const page = await context.newPage();
    // The first WebSocket is cut by the network after the reply's first words; later ones pass.
    let sockets = 0;
    await page.routeWebSocket(/\/agents\/thread-agent\//, (ws) => {
      const n = ++sockets;
      const server = ws.connectToServer();
      server.onMessage((m) => {
        ws.send(m);
        if (n === 1 && typeof m === "string" && m.includes("text-delta") && m.includes("documents ")) {
          void ws.close({ code: 1001 }).catch(() => {});
          void server.close().catch(() => {});
        }
      });
    });
    await page.goto(`${e2e.base}/?thread=${thread}#key=${encodeURIComponent(u.apiKey)}`);
    await send(page, QUESTION);
    await expect.poll(() => sockets, { timeout: 20_000 }).toBeGreaterThan(1);
    const text = await finished(assistant(page));
    await shot(page, "reconnect-finished");
    expect(text.split("Offline model:").length).toBe(2);
    await expect.poll(() => page.getByTestId("connection-banner").count()).toBe(0);
  });

  test("a connection lost until the reply has finished shows the whole reply once it is back", async () => {
    const { u, thread } = await user("outage", { doc: true, thread: true });
    const context = await e2e.newContext();
    const page = await context.newPage();
    // The network drops after the reply's first words and stays down until the server has finished the turn.
    let sockets = 0;
    let down = false;
    await page.routeWebSocket(/\/agents\/thread-agent\//, (ws) => {
      sockets++;
      if (down) return void ws.close({ code: 1011 }).catch(() => {});
      const server = ws.connectToServer();
      server.onMessage((m) => {
        ws.send(m);
        if (!down && sockets === 1 && typeof m === "string" && m.includes("text-delta") && m.includes("documents ")) {
          down = true;
          void ws.close({ code: 1001 }).catch(() => {});
          void server.close().catch(() => {});
        }
      });
    });
    await page.goto(`${e2e.base}/?thread=${thread}#key=${encodeURIComponent(u.apiKey)}`);
    await send(page, QUESTION);
    await expect.poll(() => down).toBe(true);
    await expect.poll(() => page.getByTestId("connection-banner").innerText()).toContain("Connection lost");
    await shot(page, "connection-lost");
    const stored = async () => (await u.api("GET", `/api/v1/threads/${thread}/messages`)).messages as { role: string }[];
    await expect.poll(async () => (await stored()).at(-1)?.role, { timeout: 20_000 }).toBe("assistant");
    down = false;
    const text = await finished(assistant(page));
    expect(text.split("Offline model:").length).toBe(2);
    expect(await page.locator("article.message.assistant").count()).toBe(1);
    await expect.poll(() => page.getByTestId("connection-banner").count()).toBe(0);
    expect(sockets).toBeGreaterThan(2);
    await shot(page, "outage-finished");
  });

  test("two tabs on one thread both update", async () => {
    const { u, thread } = await user("tabs", { doc: true, thread: true });
    const context = await e2e.newContext({ viewport: { width: 1000, height: 700 } });
    const a = await openChat(context, e2e.base, u, thread);
    const b = await openChat(context, e2e.base, u, thread);
    await expect.poll(() => b.getByText("Ask anything about your documents.").isVisible()).toBe(true);
    await expect.poll(() => a.getByText("Ask anything about your documents.").isVisible()).toBe(true);

    await send(a, QUESTION);
    await expect.poll(() => b.locator("article.message.user").last().innerText(), { timeout: 15_000 }).toContain(QUESTION);
    await expect.poll(() => b.locator('[data-tool="hybrid_search"] .tool-count').first().innerText(), { timeout: 15_000 }).toBe("1 passage");
    await finished(assistant(b));
    await finished(assistant(a));

    await send(b, "And what happened to the rotation motor?");
    await expect.poll(() => a.locator("article.message.user").last().innerText(), { timeout: 15_000 }).toContain("rotation motor");
    await expect.poll(() => assistant(a).innerText(), { timeout: 20_000 }).toContain("The rotation motor was replaced in April");
    await finished(assistant(a));
    expect(await a.locator("article.message").count()).toBe(4);
    expect(await b.locator("article.message").count()).toBe(4);
    await shot(a, "two-tabs-a");
    await shot(b, "two-tabs-b");
  });

  test("over the turn rate limit the page says so, with the wait, and gives the message back", async () => {
    const { u, thread } = await user("ratelimit", { thread: true });
    // Use up the user's turns over HTTP (the limit is per user, across threads and transports).
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${e2e.base}/api/v1/threads/${thread}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${u.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ text: `warm-up ${i}` }),
      });
      expect(res.status).toBe(200);
      // Read to the end: the page opens on two finished turns (joining mid-turn is another test's subject).
      await res.text();
    }
    const context = await e2e.newContext();
    const page = await openChat(context, e2e.base, u, thread);
    await expect.poll(() => page.locator("article.message.assistant").count(), { timeout: 20_000 }).toBe(2);
    await expect.poll(() => assistant(page).innerText()).toContain('I searched your documents for "warm-up 1" and found nothing about it.');
    await expect.poll(() => assistant(page).getAttribute("data-streaming")).toBeNull();
    await send(page, "one more, please");
    const banner = page.getByTestId("rate-limit-banner");
    await expect.poll(() => banner.innerText(), { timeout: 10_000 }).toMatch(/faster than this server allows\. You can send again in \d+ s\./);
    // The countdown starts from the server's own wait, not from when the page opened.
    const refused = await fetch(`${e2e.base}/api/v1/threads/${thread}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${u.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ text: "x" }),
    });
    expect(refused.status).toBe(429);
    const serverWait = Number(refused.headers.get("retry-after"));
    const shown = Number(/again in (\d+) s/.exec(await banner.innerText())![1]);
    expect(Math.abs(shown - serverWait)).toBeLessThanOrEqual(2);
    // useAgentChat settled the refused turn (onTurnEnd, by the refusal's messageIds): nothing is pending.
    expect(await page.getByRole("button", { name: "Stop" }).count()).toBe(0);
    expect(await banner.getAttribute("role")).toBe("alert");
    await expect.poll(() => composer(page).inputValue()).toBe("one more, please");
    expect(await page.getByRole("button", { name: "Send" }).isDisabled()).toBe(true);
    expect(await page.locator("article.message.user").count()).toBe(2);
    await shot(page, "rate-limited");
  });

  test("the look, in light and dark, at 1280 px and 375 px", async () => {
    const { u, thread } = await user("looks", { doc: true, thread: true });
    const res = await fetch(`${e2e.base}/api/v1/threads/${thread}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${u.apiKey}`, "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ text: QUESTION }),
    });
    expect(res.status).toBe(200);
    await res.text();
    for (const colorScheme of ["light", "dark"] as const)
      for (const width of [1280, 375]) {
        const context = await e2e.newContext({ viewport: { width, height: width > 400 ? 800 : 740 }, colorScheme, isMobile: width < 400 });
        const page = await openChat(context, e2e.base, u, thread);
        await finished(assistant(page));
        expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(width);
        await shot(page, `look-${colorScheme}-${width}`);
        await context.close();
      }
  });

  test("keyboard only, on a phone-sized screen", async () => {
    const { u } = await user("keyboard", { doc: true });
    const context = await e2e.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await page.goto(e2e.base);
    // Sign in: the key field has focus and a label.
    await expect.poll(() => activeId(page)).toBe("api-key");
    await page.keyboard.type(u.apiKey);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.getByRole("button", { name: "Threads" }).isVisible()).toBe(true);
    // The first screen, a new thread's message box, takes the focus.
    await expect.poll(() => activeId(page)).toBe("composer");

    const tabTo = async (name: string) => {
      for (let i = 0; i < 20; i++) {
        await page.keyboard.press("Tab");
        const label = await page.evaluate<string | null>(`document.activeElement?.innerText?.trim() || document.activeElement?.getAttribute("aria-label")`);
        if (label === name) return;
      }
      throw new Error(`Tab never reached "${name}"`);
    };
    await tabTo("Threads");
    await page.keyboard.press("Enter");
    await tabTo("New thread");
    await page.keyboard.press("Enter");
    await expect.poll(() => activeId(page)).toBe("composer");
    // Markdown and HTML in the text: the reply (which, finding nothing, quotes it) renders the markdown, never the HTML.
    await page.keyboard.type("Anything on **zebras**? <img src=x onerror=alert(1)>");
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type("Short answer please.");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("article.message.user").last().innerText()).toContain("<img src=x onerror=alert(1)>\nShort answer please.");
    await expect.poll(() => assistant(page).innerText(), { timeout: 20_000 }).toContain("found nothing about it");
    await expect.poll(() => assistant(page).getAttribute("data-streaming"), { timeout: 20_000 }).toBeNull();
    const reply = await assistant(page).innerText();
    expect(reply).toContain("<img src=x onerror=alert(1)>");
    expect(await assistant(page).locator(".markdown strong").innerText()).toBe("zebras");
    expect(await page.locator("article.message img").count()).toBe(0);
    // Nothing wider than the screen.
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375);
    await shot(page, "phone");
  });
});
