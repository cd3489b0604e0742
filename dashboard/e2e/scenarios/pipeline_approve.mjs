// Run a pipeline from its page, approve its approval step, and see it complete.
import { newPage, shot, signIn } from "../lib.mjs";

export default async function (browser, config) {
  const page = await newPage(browser);
  await signIn(page, config.owner.email, config.password);
  await page.goto(`/pipelines/detail?id=${config.pipeline}`);
  await page.getByRole("group", { name: /Steps of/ }).getByRole("img", { name: "gate approval" }).waitFor();
  await page.getByRole("button", { name: "Run pipeline" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Input (JSON)").fill('{"question": "6 * 7"}');
  await dialog.getByRole("button", { name: "Start" }).click();
  await page.waitForURL(/\/pipelines\/run\?id=prn_/);
  const approval = page.getByRole("group", { name: "Approval of step gate" });
  await approval.getByText("Ship it?").waitFor({ timeout: 30_000 });
  await shot(page, "pipeline-run-waiting");
  await approval.getByRole("button", { name: "Approve" }).click();
  await page.locator("h1").getByText("completed", { exact: true }).waitFor({ timeout: 30_000 });
  await page.getByRole("button", { name: "compute tool · completed" }).waitFor();
  await shot(page, "pipeline-run");
  console.log(JSON.stringify({ pipeline_run_id: new URL(page.url()).searchParams.get("id") }));
}
