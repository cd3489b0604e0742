// Sign in, start a run from the runs page, and watch it complete on its page without reloading.
import { expect, newPage, shot, signIn } from "../lib.mjs";

export default async function (browser, config) {
  const page = await newPage(browser);
  await signIn(page, config.owner.email, config.password);
  await page.goto("/runs");
  await page.getByRole("heading", { name: "Runs" }).waitFor();
  await page.getByRole("button", { name: "Start a run" }).click();
  const dialog = page.getByRole("dialog", { name: "Start a run" });
  await dialog.getByLabel("Agent").selectOption(config.slowAgent);
  await dialog.getByLabel("Input").fill("What is 6 * 7?");
  await dialog.getByRole("button", { name: "Start" }).click();
  await page.waitForURL(/\/runs\/detail\?id=run_/);
  const navigations = [];
  page.on("framenavigated", (frame) => frame === page.mainFrame() && navigations.push(frame.url()));

  const steps = page.getByRole("list", { name: "Steps" });
  await page.getByText("live", { exact: true }).waitFor();
  const early = await page.locator("h1 .badge").first().innerText();
  expect(["queued", "running"].includes(early.trim()), `the run was already "${early}" when its page opened: nothing left to watch`);
  await steps.getByRole("listitem").nth(2).waitFor({ timeout: 30_000 });
  await page.locator("h1").getByText("completed", { exact: true }).waitFor({ timeout: 30_000 });
  await page.getByLabel("Run output").getByText("Result — calculator: 42").waitFor();
  expect(navigations.length === 0, `the page reloaded to show progress: ${navigations.join(", ")}`);
  const summary = await page.locator("summary").filter({ hasText: "Events" }).innerText();
  const streamed = Number(/\((\d+)\)/.exec(summary)?.[1] ?? 0);
  expect(streamed >= 6, `the page got ${streamed} events from the run's stream (queued, started, steps, completed)`);

  await steps.getByRole("button", { name: /calculator/ }).click();
  await page.getByLabel("Output of step s2").getByText('"value": 42').waitFor();
  const id = new URL(page.url()).searchParams.get("id");
  await shot(page, "run-detail");
  console.log(JSON.stringify({ run_id: id }));

  await page.goto(`/runs?agent=${config.slowAgent}&q=${encodeURIComponent("6 * 7")}`);
  const link = page.locator(`a[href="/runs/detail?id=${id}"]`);
  await link.waitFor();
  expect((await page.getByLabel("Search inputs and outputs").inputValue()) === "6 * 7", "the search box does not show the URL's query");
  await page.reload();
  await link.waitFor();
  const agent = page.getByLabel("Agent", { exact: true });
  await agent.locator(`option[value="${config.slowAgent}"]`).waitFor({ state: "attached" });
  expect((await agent.inputValue()) === config.slowAgent, "the agent filter did not survive a reload");
}
