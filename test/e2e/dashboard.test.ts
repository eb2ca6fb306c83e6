/**
 * The dashboard at `/`, in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
 * .ci/run when missing) driven by playwright-core, against the daemon as a child process. Signs in
 * with the first admin's token, launches a job, sees it finish; a payload that looks like HTML is
 * shown as text and runs nothing; the page's headers forbid inline script and framing.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

const CHROMIUM = "/usr/bin/chromium";

/** What the checks below read of the page's globals (the tests compile without the DOM library). */
type Page = {
  document: { querySelector(selector: string): { textContent: string | null } | null; cookie: string };
  sessionStorage: { getItem(key: string): string | null };
};

describe("the dashboard in Chromium", () => {
  let daemon: TestDaemon | undefined;
  let url = "";
  let token = "";
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
    daemon = await startTestDaemon();
    url = daemon.url;
    token = daemon.adminToken();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    daemon?.stop();
  });

  it("serves the page with headers that allow no inline script, no framing, no sniffing", async () => {
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect((await fetch(`${url}/dashboard/app.js`)).headers.get("content-type")).toContain("javascript");
    expect((await fetch(`${url}/dashboard/nope.js`)).status).toBe(404);
  });

  it("signs in, launches a job and shows it finished; HTML in a payload stays text", async () => {
    const page = await browser.newPage();
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const consoleErrors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    await page.goto(`${url}/`);
    // A bad token is refused and the page stays signed out.
    await page.fill("#token", "ferry_wrong");
    await page.click("#sign-in button[type=submit]");
    await page.waitForFunction(
      () => (globalThis as unknown as Page).sessionStorage.getItem("ferry.token") === null,
    );
    await page.waitForSelector("#signed-in", { state: "hidden" });

    await page.fill("#token", token);
    await page.click("#sign-in button[type=submit]");
    await page.waitForSelector("#signed-in", { state: "visible" });

    const marker = `<img src=x onerror="alert('xss')">`;
    await page.fill("#payload", JSON.stringify({ note: marker }));
    await page.click("#launch button[type=submit]");
    await page.waitForSelector("#mine tbody tr");
    await page.waitForFunction(
      () =>
        (globalThis as unknown as Page).document.querySelector("#mine tbody tr td:nth-child(3)")
          ?.textContent === "completed",
      undefined,
      { timeout: 15_000 },
    );
    // The job list shows the payload's preview as text, and no <img> was made from it.
    await page.waitForFunction(() =>
      (globalThis as unknown as Page).document
        .querySelector("#jobs tbody tr td.preview")
        ?.textContent?.includes("<img"),
    );
    expect(await page.locator("#jobs img").count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(await page.locator("#totals").textContent()).toContain("launched 1");
    // The token lives in this tab's sessionStorage only, never in the page or a cookie.
    expect(await page.evaluate(() => (globalThis as unknown as Page).document.cookie)).toBe("");
    expect(await page.content()).not.toContain(token.slice(6));
    // The refused sign-in logged its 401; nothing else went wrong in the page.
    expect(consoleErrors.filter((e) => !e.includes("401"))).toEqual([]);
    await page.close();
  }, 60_000);
});
