import { describe, expect, test } from "vitest";
import type { Page } from "playwright-core";
import { startFakeOpenAI, type FakeOpenAI } from "../support/fake-openai.ts";
import { chromiumAvailable, openChat, shot, stackForFile } from "./support.ts";

// The page against a model that can fail: the test suite's fake OpenAI server, whose replies echo the
// question ("Echo: ..."), so a question's markdown comes back as the reply's.
let fake: FakeOpenAI;

const run = chromiumAvailable();

describe.skipIf(!run)("the web chat's first ten minutes, in Chromium", () => {
  const e2e = stackForFile(
    "first",
    async () => {
      fake = await startFakeOpenAI();
      return { OPENAI_API_KEY: "e2e-key", OPENAI_BASE_URL: fake.url, CHAT_MODEL: "fake-model", TURN_RATE_LIMIT: "30" };
    },
    () => fake?.stop(),
  );
  async function user(label: string) {
    const u = await e2e.newUser(label);
    return u;
  }
  const composer = (page: Page) => page.getByRole("textbox", { name: "Message" });
  const assistant = (page: Page) => page.locator("article.message.assistant").last();
  async function send(page: Page, text: string) {
    await composer(page).fill(text);
    await composer(page).press("Enter");
  }
  const done = async (page: Page) => {
    await expect.poll(() => page.locator("article.message.assistant").count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await expect.poll(() => assistant(page).getAttribute("data-streaming"), { timeout: 20_000 }).toBeNull();
    await expect.poll(() => page.getByRole("button", { name: "Send" }).count()).toBe(1);
  };

  test("the first screen: a message box and suggested questions; the first send makes the thread; the next visit opens it", async () => {
    const u = await user("first");
    await u.api("POST", "/api/v1/documents", {
      title: "Tea guide",
      text: "Steep green tea for two minutes at 80 degrees.",
      metadata: { questions: ["How long do I steep green tea?"] },
    });
    const context = await e2e.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await openChat(context, e2e.base, u);
    await expect.poll(() => page.getByRole("heading", { name: "What would you like to know?" }).isVisible()).toBe(true);
    expect(await page.evaluate<string | undefined>("document.activeElement?.id")).toBe("composer");
    const suggestion = page.getByRole("list", { name: "Suggested questions" }).getByRole("button", { name: "How long do I steep green tea?" });
    await shot(page, "first-screen");
    await suggestion.click();
    await expect.poll(() => page.locator("article.message.user").innerText(), { timeout: 15_000 }).toBe("How long do I steep green tea?");
    await done(page);
    expect(await assistant(page).innerText()).toContain("Echo: How long do I steep green tea?");
    // The server titles the thread after the first exchange; the list shows it without a reload.
    const threads = page.getByRole("navigation", { name: "Threads" });
    await expect.poll(() => threads.locator(".thread-item.current .thread-title").innerText(), { timeout: 20_000 }).not.toBe("Untitled thread");
    const [thread] = (await u.api("GET", "/api/v1/threads")).items;
    const page2 = await openChat(context, e2e.base, u);
    await expect.poll(() => page2.url()).toContain(`thread=${thread.id}`);
    await expect.poll(() => page2.locator("article.message.user").count()).toBe(1);
  });

  test("a failed turn says so on the turn, once, with Retry; a reload does not replay it; Retry answers", async () => {
    const u = await user("failed");
    const { thread } = await u.api("POST", "/api/v1/threads", { title: "failing" });
    const context = await e2e.newContext();
    const page = await openChat(context, e2e.base, u, thread.id);
    await send(page, "will this work [flaky]");
    const failed = page.getByTestId("turn-failed");
    await expect.poll(() => failed.innerText(), { timeout: 30_000 }).toContain("This reply failed. The model server had a problem (500). Try again in a moment.");
    expect(await failed.count()).toBe(1);
    expect(await page.getByTestId("error-banner").count()).toBe(0);
    await shot(page, "turn-failed");
    await page.reload();
    await expect.poll(() => page.locator("article.message.user").count()).toBe(1);
    // Nothing of the model's error is replayed; the question is there, unanswered, with its Retry.
    await expect.poll(() => failed.innerText()).toContain("This message has no reply.");
    expect(await page.getByText("had a problem").count()).toBe(0);
    await failed.getByRole("button", { name: "Retry" }).click();
    await expect.poll(() => assistant(page).innerText(), { timeout: 20_000 }).toContain("Echo: will this work [flaky]");
    await done(page);
    expect(await failed.count()).toBe(0);
    expect((await u.api("GET", `/api/v1/threads/${thread.id}/messages`)).messages.map((m: { role: string }) => m.role)).toEqual(["user", "assistant"]);
  });

  test("markdown: bordered tables, highlighted code with its language and a copy button, the cursor on the last line while streaming", async () => {
    const u = await user("markdown");
    const { thread } = await u.api("POST", "/api/v1/threads", { title: "markdown" });
    const context = await e2e.newContext({ viewport: { width: 1280, height: 900 }, permissions: ["clipboard-read", "clipboard-write"] });
    const page = await openChat(context, e2e.base, u, thread.id);
    const md = ["Doses:", "", "| size | grams |", "| --- | --- |", "| single | 9 |", "| double | 18 |", "", "```js", "const dose = 18; // grams", "```", ""].join("\n");
    await send(page, `${md}\nslowly now [slow]`);
    // While it streams, the cursor follows the last line's text (not a line of its own).
    await expect.poll(() => assistant(page).getAttribute("data-streaming"), { timeout: 15_000 }).toBe("true");
    await expect
      .poll(() => page.evaluate<string>("getComputedStyle([...document.querySelectorAll('article.message.assistant .markdown > *')].at(-1), '::after').content"), {
        timeout: 15_000,
      })
      .toBe('""');
    await shot(page, "markdown-streaming");
    await done(page);
    const reply = assistant(page);
    expect(await reply.locator("td").count()).toBe(4);
    // Page-side expressions as strings: this file is typed without the DOM library.
    const cellStyle = (prop: string) => page.evaluate<string>(`getComputedStyle(document.querySelector("article.message.assistant:last-of-type td")).${prop}`);
    expect(await cellStyle("borderTopStyle")).toBe("solid");
    expect(Number.parseFloat(await cellStyle("paddingLeft"))).toBeGreaterThan(4);
    const code = reply.locator(".code-block");
    expect(await code.locator(".code-lang").innerText()).toBe("js");
    await expect.poll(() => code.locator(".tok-kwd").first().innerText()).toBe("const");
    expect(await code.locator(".tok-cmnt").innerText()).toContain("// grams");
    await code.getByRole("button", { name: "Copy js" }).click();
    await expect.poll(() => page.evaluate<string>("navigator.clipboard.readText()")).toBe("const dose = 18; // grams");
    await shot(page, "markdown-finished");
  });

  test("a #key= link pasted into an open tab signs in as that user", async () => {
    const a = await user("tab-a");
    const b = await user("tab-b");
    const page = await openChat(await e2e.newContext(), e2e.base, a);
    await expect.poll(() => page.locator(".who").innerText()).toBe("E2E tab-a");
    await page.evaluate(`location.hash = "#key=${encodeURIComponent(b.apiKey)}"`);
    await expect.poll(() => page.locator(".who").innerText()).toBe("E2E tab-b");
    expect(page.url()).not.toContain("key=");
  });

  test("a compaction divider, message search opening the thread at the message, .md snippets as text, small things", async () => {
    const u = await user("search");
    await u.api("POST", "/api/v1/documents", { title: "Kettle notes", text: "# Descaling\n\nUse **citric acid** to descale the [kettle](https://example.com) every month." });
    const { thread } = await u.api("POST", "/api/v1/threads", { title: "A rather long title for a thread about descaling kettles with citric acid" });
    const context = await e2e.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await openChat(context, e2e.base, u, thread.id);
    await send(page, "please search for citric acid descaling");
    await done(page);
    // The search's passage reads as text, not markdown source.
    const card = assistant(page).locator('[data-tool="hybrid_search"]');
    await card.locator(".tool-head").click();
    const snippet = await card.locator(".hit-snippet").first().innerText();
    expect(snippet).toContain("Use citric acid to descale the kettle every month.");
    expect(snippet).not.toMatch(/[#*[\]]/);
    // A thread's title and date are read apart: the button is named by the title alone.
    const threads = page.getByRole("navigation", { name: "Threads" });
    expect(await threads.getByRole("button", { name: "A rather long title for a thread about descaling kettles with citric acid", exact: true }).count()).toBe(1);
    // The rename box shows the whole title.
    await threads.getByRole("button", { name: /^Rename / }).click();
    const box = threads.getByRole("textbox");
    expect(await box.evaluate((el) => el.scrollHeight <= el.clientHeight + 1 && el.scrollWidth <= el.clientWidth + 1)).toBe(true);
    await shot(page, "rename-box");
    await box.press("Escape");
    // /favicon.ico is an icon.
    const icon = await fetch(`${e2e.base}/favicon.ico`);
    expect(icon.headers.get("content-type")).toMatch(/^image\//);
    // Search over the user's messages: the result opens the thread at the message. Messages are indexed once their
    // thread is quiet (about 2 s after the turn): searched before that, they are not found yet, as for a person.
    await expect
      .poll(async () => ((await u.api("GET", "/api/v1/search?q=citric&scope=messages")) as { results: unknown[] }).results.length, { timeout: 20_000 })
      .toBeGreaterThan(0);
    await page.getByRole("searchbox", { name: "Search conversations" }).fill("citric");
    const hit = threads.locator(".search-results .hit-link").first();
    await expect.poll(() => hit.innerText(), { timeout: 20_000 }).toContain("citric");
    expect(await threads.locator(".search-results mark").first().innerText()).toMatch(/citric/i);
    await shot(page, "message-search");
    await hit.click();
    await expect.poll(() => page.locator("article.message.found").count()).toBe(1);
    // A history whose reply carries a compaction part shows a quiet divider (the page on its own, against the
    // contract): the part is added to the history as it reaches the page, over HTTP and over the socket.
    const compacted = (messages: { role: string; parts: unknown[] }[]) => {
      messages.find((m) => m.role === "assistant")?.parts.unshift({ type: "data-compaction", data: { summarizedThrough: 1, messages: 2 } });
      return messages;
    };
    await page.route("**/get-messages*", async (route) => {
      const res = await route.fetch();
      await route.fulfill({ response: res, json: compacted(await res.json()) });
    });
    await page.routeWebSocket(/\/agents\/thread-agent\//, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((m) => {
        const frame = typeof m === "string" ? JSON.parse(m) : null;
        ws.send(frame?.type === "cf_agent_chat_messages" ? JSON.stringify({ ...frame, messages: compacted(frame.messages) }) : m);
      });
    });
    await page.reload();
    await expect.poll(() => page.getByTestId("compaction").innerText()).toBe("Earlier messages summarized");
    await shot(page, "compaction-divider");
  });

  test("the documents dialog fits a 375 px screen", async () => {
    const u = await user("phone-docs");
    await u.api("POST", "/api/v1/documents", { title: "A document with a title long enough to wrap on a phone", text: "Some text." });
    const page = await openChat(await e2e.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true }), e2e.base, u);
    await page.getByRole("button", { name: "Documents" }).click();
    const dialog = page.getByRole("dialog", { name: "Your documents" });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    const box = (await dialog.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(375);
    expect(await dialog.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
    await shot(page, "documents-phone");
  });
});
