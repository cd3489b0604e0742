// Shared helpers of the browser scenarios: Debian's chromium driven by playwright-core (no browser download).
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

export const BASE = process.env.DASHBOARD_URL ?? "http://127.0.0.1:8000";
export const SHOTS = process.env.SCREENSHOT_DIR ?? "test-results/screenshots";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Debian's chromium, headless, with a scenario's own flags (`args`: e.g. a fake microphone) after the usual ones. */
export async function launch(args = []) {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: [...ARGS, ...args], headless: true });
}

/** A fresh context (its own cookie jar) and page; `console.error`s and page errors are collected. */
export async function newPage(browser, { width = 1280, height = 900, colorScheme = "light" } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme, baseURL: BASE });
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") page.problems.push(`console: ${message.text()}`);
  });
  page.setDefaultTimeout(15_000);
  return page;
}

export async function signIn(page, email, password) {
  await page.goto("/sign-in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => !url.pathname.startsWith("/sign-in"));
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

export function expect(condition, message) {
  if (!condition) throw new Error(message);
}

/** Run `body` with a browser; exit 1 with the error (and a screenshot of each open page) on failure. */
export async function scenario(name, body, args = []) {
  const browser = await launch(args);
  try {
    await body(browser);
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        const problems = (page.problems ?? []).filter((p) => !/status of 4\d\d/.test(p));
        if (problems.length) throw new Error(`${name}: errors in the page:\n${problems.join("\n")}`);
      }
    }
    console.log(`ok ${name}`);
  } catch (error) {
    for (const [i, context] of browser.contexts().entries()) {
      for (const [j, page] of context.pages().entries()) {
        await shot(page, `FAILED-${name}-${i}-${j}`).catch(() => undefined);
      }
    }
    console.error(`FAILED ${name}: ${error.stack ?? error}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/** Wait until the page shows no loading indicator (event streams keep the network busy, so no "networkidle"). */
export async function settled(page) {
  await page.waitForFunction(() => !document.querySelector(".spinner"), undefined, { timeout: 15_000 });
  await page.waitForTimeout(250);
}
