// Edit an agent (a new version), compare the versions, then roll back to the first.
import { newPage, shot, signIn } from "../lib.mjs";

export default async function (browser, config) {
  const page = await newPage(browser);
  await signIn(page, config.owner.email, config.password);
  await page.goto("/agents");
  await page.getByRole("link", { name: config.editAgentName }).click();
  await page.waitForURL(/\/agents\/detail\?id=/);
  await page.getByRole("button", { name: "Edit" }).click();
  await page.getByLabel("Instructions").fill("Answer in one short sentence.\nAlways show your arithmetic.");
  await page.getByRole("button", { name: "Save new version" }).click();
  await page.getByText("Saved as a new current version").waitFor();
  await page.getByRole("heading", { name: "Current version: v2" }).waitFor();

  await page.getByRole("tab", { name: "Versions" }).click();
  await page.waitForURL(/[?&]tab=versions/);
  const diff = page.getByRole("region", { name: "Changes from v1 to v2" });
  await diff.getByText("+   Always show your arithmetic.").waitFor();
  await diff.getByText("- instructions: You are a careful calculator.").waitFor();
  await shot(page, "agent-versions");
  await page.getByRole("button", { name: "Roll back to v1" }).click();
  await page.getByText("v1 is now current").waitFor();
  await page.getByRole("row", { name: /v1 current/ }).waitFor();
  await page.getByRole("button", { name: "Promote v2" }).waitFor();
}
