// The stack and the browser for the web chat's end-to-end tests: `wrangler dev` started by the same
// code as `npm run dev` (scripts/lib/dev-server.ts), against the suite's Postgres, and Debian's Chromium.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, inject } from "vitest";
import { buildWeb, callApi, startWorker, type DevWorker } from "../../scripts/lib/dev-server.ts";
import { freePort } from "../../scripts/lib/postgres.ts";
import { TEST_EMAIL_DOMAIN } from "../../src/db/users.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const ADMIN_TOKEN = "e2e-admin-token-0123456789";
export const ARTIFACTS = new URL("../../test-artifacts/e2e/", import.meta.url).pathname;

/** No browser: CI must fail; a developer's run skips, loudly. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const msg = `${CHROMIUM} not found: install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH)`;
  if (process.env.CI) throw new Error(`[e2e] ${msg}`);
  // Straight to stderr: vitest holds back console output of tests that do not fail.
  process.stderr.write(`\n[e2e] !!! SKIPPING the browser tests: ${msg} !!!\n\n`);
  return false;
}

export type Stack = { worker: DevWorker; browser: Browser; stop: () => Promise<void> };

export async function startStack(databaseUrl: string, vars: Record<string, string>): Promise<Stack> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await buildWeb("pipe");
  const persistTo = mkdtempSync(join(tmpdir(), "threadline-e2e-"));
  let log = "";
  const worker = await startWorker({
    port: await freePort(),
    inspectorPort: await freePort(),
    databaseUrl,
    persistTo,
    vars: { ADMIN_TOKEN, ...vars },
    output: (chunk) => (log += chunk),
  });
  // Flags this machine needs: no sandbox as root, and nothing that reaches for the (closed) network.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    worker,
    browser,
    stop: async () => {
      await browser.close().catch(() => {});
      await worker.stop();
      writeFileSync(join(ARTIFACTS, "server.log"), log);
      rmSync(persistTo, { recursive: true, force: true });
    },
  };
}

async function call(base: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const { status, json } = await callApi(base, token, method, path, body);
  if (status < 200 || status > 299) throw new Error(`${method} ${path}: ${status} ${JSON.stringify(json)}`);
  return json;
}

export type TestUser = { id: string; apiKey: string; email: string; api: (method: string, path: string, body?: unknown) => Promise<any>; remove: () => Promise<void> };

/** A user of this test alone (in the test email domain), removed by `remove()`. */
export async function makeUser(base: string, label: string): Promise<TestUser> {
  const email = `e2e-${label}-${crypto.randomUUID().slice(0, 8)}@${TEST_EMAIL_DOMAIN}`;
  const { user, apiKey } = await call(base, ADMIN_TOKEN, "POST", "/api/v1/users", { email, name: `E2E ${label}` });
  return {
    id: user.id,
    apiKey,
    email,
    api: (method, path, body) => call(base, apiKey, method, path, body),
    remove: () => call(base, ADMIN_TOKEN, "DELETE", `/api/v1/users/${user.id}`).then(() => {}),
  };
}

/** Opens the page signed in through the `#key=` link `npm run dev` prints, on a thread if given. */
export async function openChat(context: BrowserContext, base: string, user: TestUser, threadId?: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/${threadId ? `?thread=${threadId}` : ""}#key=${encodeURIComponent(user.apiKey)}`);
  return page;
}

export const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

/** Every URL a page asks for, HTTP and WebSocket (fragments never leave the browser, so none are kept). */
export function recordUrls(page: Page): { requests: string[]; sockets: string[] } {
  const seen = { requests: [] as string[], sockets: [] as string[] };
  page.on("request", (r) => seen.requests.push(r.url().split("#")[0]!));
  page.on("websocket", (ws) => seen.sockets.push(ws.url()));
  return seen;
}

/** Signs in through the form, as someone who pasted their key would. */
export async function signIn(page: Page, base: string, user: TestUser): Promise<void> {
  await page.goto(base);
  await page.getByLabel("API key").fill(user.apiKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

/**
 * For a test file: the stack (with `vars`) started before its tests; after each test a screenshot of
 * every page of a failed one and every browser context closed; after all, every user it made removed
 * and the stack stopped (then `after`).
 */
export function stackForFile(name: string, vars: () => Record<string, string> | Promise<Record<string, string>>, after?: () => Promise<unknown>) {
  let stack: Stack | undefined;
  const users: TestUser[] = [];
  const contexts: BrowserContext[] = [];
  beforeAll(async () => {
    stack = await startStack(inject("databaseUrl"), await vars());
  });
  afterEach(async ({ task }) => {
    if (task.result?.state === "fail")
      for (const [i, page] of contexts.flatMap((c) => c.pages()).entries()) await shot(page, `FAILED-${name}-${task.name.slice(0, 40).replace(/\W+/g, "-")}-${i}`).catch(() => {});
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await Promise.all(users.map((u) => u.remove()));
    await stack?.stop();
    await after?.();
  });
  const started = () => {
    if (!stack) throw new Error("the stack starts in beforeAll");
    return stack;
  };
  return {
    get stack() {
      return started();
    },
    get base() {
      return started().worker.url;
    },
    async newContext(options?: Parameters<Browser["newContext"]>[0]) {
      const context = await started().browser.newContext(options);
      contexts.push(context);
      return context;
    },
    async newUser(label: string) {
      const u = await makeUser(started().worker.url, label);
      users.push(u);
      return u;
    },
  };
}
