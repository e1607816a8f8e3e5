// An API explorer's first minutes in Swagger UI, in a real browser: Debian's
// Chromium, driven by playwright-core (which downloads no browser of its own).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { parse } from "yaml";

import { env } from "./support/env.js";

type Operation = {
  operationId: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  "x-permissions"?: string[];
};
type Spec = { tags: Array<{ name: string }>; paths: Record<string, Record<string, Operation>> };

const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** `METHOD /path` of each operation in the order Swagger UI should show: by tag, then as written. */
function operationOrder(spec: Spec): string[] {
  const ops = Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => methods.includes(m))
      .map(([m, op]) => ({ key: `${m.toUpperCase()} ${path}`, tag: op.tags?.[0] ?? "default" })),
  );
  const tags = [...spec.tags.map((t) => t.name), ...new Set(ops.map((o) => o.tag))];
  return [...new Set(tags)].flatMap((tag) => ops.filter((o) => o.tag === tag).map((o) => o.key));
}

/** The permissions an operation declares: the `x-permissions` extension, or its bearer scopes. */
function permissions(op: Operation): string[] {
  return op["x-permissions"] ?? (op.security ?? []).flatMap((req) => Object.values(req).flat());
}

const spec = parse(readFileSync(env.spec, "utf8")) as Spec;
let browser: Browser;
let page: Page;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  page = await browser.newPage();
  page.setDefaultTimeout(30_000);
  await page.goto(`${env.baseUrl}/docs/`);
  await page.locator(".opblock").first().waitFor();
});

after(async () => {
  await browser?.close();
});

/** The operation's block, found by method and path (its element id depends on how the document spells operationIds). */
function operation(method: string, path: string): Locator {
  return page
    .locator(`.opblock.opblock-${method}`)
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
}

// Opening or closing a block only rewrites the URL's fragment (deep linking):
// no navigation to wait for, and on a busy machine that wait is what times out.
async function expand(op: Locator): Promise<void> {
  if (!(await op.evaluate((el) => el.classList.contains("is-open")))) {
    await op.locator(".opblock-summary").first().click({ noWaitAfter: true });
  }
  await op.locator(".opblock-body").waitFor();
}

async function collapse(op: Locator): Promise<void> {
  await op.locator(".opblock-summary").first().click({ noWaitAfter: true });
  await op.locator(".opblock-body").waitFor({ state: "detached" });
}

/** Presses "Try it out" if needed, then Execute, and returns the live response's status and body. */
async function execute(op: Locator): Promise<{ status: string; body: string }> {
  const tryOut = op.locator("button.try-out__btn", { hasText: "Try it out" });
  if (await tryOut.count()) await tryOut.click();
  await op.locator("button.execute").click();
  const live = op.locator(".live-responses-table .response").first();
  await live.waitFor();
  return {
    status: (await live.locator(".response-col_status").innerText()).trim(),
    body: await live.locator(".response-col_description pre").first().innerText(),
  };
}

test("Try it out: log in, authorize, call GET /users/me", async () => {
  const login = operation("post", "/api/v1/auth/login");
  await expand(login);
  const tryOut = login.locator("button.try-out__btn", { hasText: "Try it out" });
  if (await tryOut.count()) await tryOut.click();
  await login
    .locator("textarea.body-param__text")
    .fill(JSON.stringify({ email: env.adminEmail, password: env.adminPassword }));
  const res = await execute(login);
  assert.equal(res.status, "200", res.body);
  const accessToken = (JSON.parse(res.body) as { data: { access_token: string } }).data.access_token;

  await page.locator(".auth-wrapper button.authorize").click();
  const dialog = page.locator(".dialog-ux");
  await dialog.locator(".auth-container input").first().fill(accessToken);
  await dialog.locator(".auth-btn-wrapper button.authorize").click();
  await dialog.locator(".auth-btn-wrapper button", { hasText: "Close" }).click();

  const me = operation("get", "/api/v1/users/me");
  await expand(me);
  const got = await execute(me);
  assert.equal(got.status, "200", got.body);
  assert.equal((JSON.parse(got.body) as { data: { email: string } }).data.email, env.adminEmail);
});

test("every operation shows the permission it needs", async () => {
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [m, op] of Object.entries(item)) {
      const needs = methods.includes(m) ? permissions(op) : [];
      if (needs.length === 0) continue;
      const block = operation(m, path);
      await expand(block);
      const text = await block.locator(".opblock-body").innerText();
      for (const p of needs) assert.ok(text.includes(p), `${op.operationId} does not show ${p}`);
      // One open block at a time keeps the page light enough for a loaded machine.
      await collapse(block);
    }
  }
});

test("operations appear in the spec's order", async () => {
  const shown = await page
    .locator(".opblock")
    .evaluateAll((els) =>
      els.map(
        (el) =>
          `${el.querySelector(".opblock-summary-method")?.textContent?.trim()} ${el
            .querySelector(".opblock-summary-path")
            ?.getAttribute("data-path")}`,
      ),
    );
  assert.deepEqual(shown, operationOrder(spec));
});
