import { describe, expect, test } from "vitest";
import type { Page } from "playwright-core";
import { chromiumAvailable, recordUrls, shot, signIn, type Stack, stackForFile } from "./support.ts";

const VARS = { OFFLINE_CHUNK_DELAY_MS: "5", TURN_RATE_LIMIT: "20", TURN_RATE_WINDOW_SECONDS: "60" };

const CSP =
  "default-src 'self'; img-src 'self' data:; connect-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
const HEADERS = { "content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" };

const run = chromiumAvailable();

describe.skipIf(!run)("web chat security in Chromium", () => {
  const e2e = stackForFile("security", () => VARS);

  async function newPage(options?: Parameters<Stack["browser"]["newContext"]>[0]): Promise<Page> {
    const context = await e2e.newContext(options);
    const page = await context.newPage();
    // Anything the page tries that its Content-Security-Policy refuses (a remote image, an inline script) is kept here.
    await page.addInitScript(
      "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}:${e.columnNumber} ${e.sample}`))",
    );
    return page;
  }
  const violations = (page: Page) => page.evaluate<string[]>("window.__csp");
  async function user(label: string) {
    const u = await e2e.newUser(label);
    return u;
  }
  const assistant = (page: Page) => page.locator("article.message.assistant").last();
  async function ask(page: Page, text: string) {
    const replies = await page.locator("article.message.assistant").count();
    await page.getByRole("textbox", { name: "Message" }).fill(text);
    await page.getByRole("textbox", { name: "Message" }).press("Enter");
    await expect.poll(() => page.locator("article.message.assistant").count(), { timeout: 20_000 }).toBe(replies + 1);
    await expect.poll(() => assistant(page).innerText(), { timeout: 20_000 }).toContain("Offline model:");
    await expect.poll(() => assistant(page).getAttribute("data-streaming")).toBeNull();
  }

  test("the page, its assets and the single-page fallback carry the CSP, nosniff and no-referrer", async () => {
    const html = await (await fetch(`${e2e.base}/`)).text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.some((a) => a.endsWith(".js"))).toBe(true);
    expect(assets.some((a) => a.endsWith(".css"))).toBe(true);
    for (const path of ["/", "/index.html", "/?thread=00000000-0000-4000-8000-000000000000", "/some/deep/link", ...assets]) {
      const res = await fetch(`${e2e.base}${path}`, { redirect: "manual" });
      expect(res.status, path).toBeLessThan(400);
      for (const [name, value] of Object.entries(HEADERS)) expect(res.headers.get(name), `${name} on ${path}`).toBe(value);
      await res.body?.cancel();
    }
    const fallback = await fetch(`${e2e.base}/some/deep/link`);
    expect(fallback.headers.get("content-type")).toContain("text/html");
    expect(await fallback.text()).toContain('<div id="root"></div>');
    // The rules file configures the assets; it is not one of them.
    expect(await (await fetch(`${e2e.base}/_headers`)).text()).not.toContain("Content-Security-Policy");
  });

  test("signing in, opening a thread, chatting and reloading: no URL carries the API key; the WebSocket and history carry a ticket", async () => {
    const u = await user("urls");
    const page = await newPage();
    const seen = recordUrls(page);
    await signIn(page, e2e.base, u);
    await page.getByRole("button", { name: "New thread" }).first().click();
    await ask(page, "Is anything in my documents about lighthouses?");
    await page.reload();
    await expect.poll(() => assistant(page).innerText(), { timeout: 20_000 }).toContain("Offline model:");
    await ask(page, "And about keepers?");
    await shot(page, "security-ticket-chat");

    const all = [...seen.requests, ...seen.sockets];
    expect(seen.requests.some((url) => url.includes("/tickets"))).toBe(true);
    for (const url of all) {
      expect(url).not.toContain(u.apiKey);
      expect(url).not.toContain(encodeURIComponent(u.apiKey));
      expect(url).not.toContain("token=");
    }
    // Two openings (before and after the reload), each on a ticket.
    expect(seen.sockets.length).toBeGreaterThanOrEqual(2);
    for (const url of seen.sockets) expect(url).toMatch(/\/agents\/thread-agent\/[0-9a-f-]{36}\?(.*&)?ticket=[^&]+/);
    const history = seen.requests.filter((url) => url.includes("/get-messages"));
    expect(history.length).toBeGreaterThanOrEqual(2);
    for (const url of history) expect(url).toMatch(/[?&]ticket=[^&]+/);
    expect(await violations(page)).toEqual([]);
  });

  test("a markdown image in a reply is a link, never fetched; links in replies are nofollow", async () => {
    const u = await user("image");
    const page = await newPage();
    const seen = recordUrls(page);
    await signIn(page, e2e.base, u);
    await page.getByRole("button", { name: "New thread" }).first().click();
    // The offline model quotes the question in its reply, so the reply's markdown holds the image and the link.
    await ask(page, "What is ![the leak](https://evil.example/leak.png?what=secret) and [this page](https://evil.example/page)?");
    const reply = assistant(page).locator(".markdown");
    expect(await reply.locator("img").count()).toBe(0);
    const image = reply.getByRole("link", { name: "the leak" });
    expect(await image.getAttribute("href")).toBe("https://evil.example/leak.png?what=secret");
    expect(await image.getAttribute("rel")).toBe("noopener noreferrer nofollow");
    expect(await image.getAttribute("target")).toBe("_blank");
    const link = reply.getByRole("link", { name: "this page" });
    expect(await link.getAttribute("href")).toBe("https://evil.example/page");
    expect(await link.getAttribute("rel")).toBe("noopener noreferrer nofollow");
    expect(await link.getAttribute("target")).toBe("_blank");
    await shot(page, "security-image-link");
    // Neither fetched nor even attempted (an attempt would be a CSP violation, not a request).
    expect(seen.requests.filter((url) => new URL(url).origin !== e2e.base)).toEqual([]);
    expect(await violations(page)).toEqual([]);
  });

  test("a ticket refused with 401 says the key is no longer accepted; a network failure is retried, with a message meanwhile", async () => {
    const u = await user("refused");
    const { thread } = await u.api("POST", "/api/v1/threads", { title: "e2e refused" });
    const page = await newPage();
    let refusals = 0;
    await page.route("**/api/v1/threads/*/tickets", (route) => {
      refusals++;
      return route.fulfill({ status: 401, contentType: "application/json", body: JSON.stringify({ error: { code: "unauthorized", message: "invalid token" } }) });
    });
    await signIn(page, e2e.base, u);
    await page.getByRole("button", { name: /^e2e refused/ }).click();
    const error = page.getByTestId("thread-error");
    await expect.poll(() => error.innerText()).toContain("Your API key is no longer accepted");
    expect(await error.getAttribute("role")).toBe("alert");
    // Asked once (twice under StrictMode's double render), not again and again.
    await new Promise((r) => setTimeout(r, 1500));
    expect(refusals).toBeLessThanOrEqual(2);
    await shot(page, "security-ticket-refused");

    // Unreachable, then back: the page says it is trying again, then opens the thread.
    await page.unroute("**/api/v1/threads/*/tickets");
    let failures = 0;
    await page.route("**/api/v1/threads/*/tickets", (route) => (++failures <= 2 ? route.abort("internetdisconnected") : route.continue()));
    await page.goto(`${e2e.base}/?thread=${thread.id}`);
    await expect.poll(() => page.getByTestId("connection-banner").innerText()).toContain("The server cannot be reached; trying again.");
    await shot(page, "security-ticket-retrying");
    await expect.poll(() => page.getByText("Ask anything about your documents.").isVisible(), { timeout: 20_000 }).toBe(true);
    expect(failures).toBeGreaterThanOrEqual(3);
    expect(await page.getByTestId("connection-banner").count()).toBe(0);

    // And the 401's way out works.
    await page.unroute("**/api/v1/threads/*/tickets");
    await page.route("**/api/v1/threads/*/tickets", (route) => route.fulfill({ status: 401, contentType: "application/json", body: "{}" }));
    await page.reload();
    await page.getByTestId("thread-error").getByRole("button", { name: "Sign out" }).click();
    await expect.poll(() => page.getByLabel("API key").isVisible()).toBe(true);
  });

  test("a reconnect opens on a new ticket and keeps the draft, the focus and the scroll position", async () => {
    const u = await user("reconnect");
    const { thread } = await u.api("POST", "/api/v1/threads", { title: "e2e reconnect" });
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${e2e.base}/api/v1/threads/${thread.id}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${u.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ text: `warm-up ${i} `.repeat(40) }),
      });
      expect(res.status).toBe(200);
      await res.text();
    }
    const page = await newPage({ viewport: { width: 800, height: 500 } });
    const seen = recordUrls(page);
    let cut = () => {};
    let sockets = 0;
    await page.routeWebSocket(/\/agents\/thread-agent\//, (ws) => {
      const server = ws.connectToServer();
      if (++sockets === 1) cut = () => void Promise.all([ws.close({ code: 1001 }), server.close()]).catch(() => {});
    });
    await signIn(page, e2e.base, u);
    await page.getByRole("button", { name: /^e2e reconnect/ }).click();
    await page.locator("article.message.assistant").nth(2).waitFor();
    await page.getByRole("textbox", { name: "Message" }).fill("half a thought");
    // Scroll events are dispatched with the next frame: the page must know the reader scrolled up before the cut.
    // A transcript update landing in that frame (the connect's catch-up) scrolls to the end first: scrolled up again then.
    await expect
      .poll(() =>
        page.evaluate<number>(
          "(async () => { const el = document.querySelector('.messages'); el.scrollTop = 40; await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); return el.scrollTop; })()",
        ),
      )
      .toBe(40);
    cut();
    await expect.poll(() => sockets).toBe(2);
    await expect.poll(() => page.getByTestId("connection-banner").count()).toBe(0);
    // Asked for again, not the first socket's (the server's tickets are per second, so the two may be equal).
    expect(seen.requests.filter((url) => url.endsWith("/tickets"))).toHaveLength(2);
    for (const url of seen.sockets) expect(new URL(url).searchParams.get("ticket")).toBeTruthy();
    expect(await page.getByRole("textbox", { name: "Message" }).inputValue()).toBe("half a thought");
    expect(await page.evaluate<string | undefined>("document.activeElement?.id")).toBe("composer");
    expect(await page.evaluate<number>("document.querySelector('.messages').scrollTop")).toBe(40);
    expect(await violations(page)).toEqual([]);
  });
});
