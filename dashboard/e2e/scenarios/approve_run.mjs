// A run waits for approval of a tool call; an operator approves it inline and the run completes.
import { newPage, signIn } from "../lib.mjs";

export default async function (browser, config) {
  const page = await newPage(browser);
  await signIn(page, config.operator.email, config.password);
  await page.goto(`/runs/detail?id=${config.waitingRun}`);
  const approval = page.getByRole("group", { name: /Approval of step/ });
  await approval.getByText('call calculator({"expression":"6 * 7"})').waitFor();
  await approval.getByLabel("Comment (optional)").fill("looks right");
  await approval.getByRole("button", { name: "Approve" }).click();
  await page.locator("h1").getByText("completed", { exact: true }).waitFor({ timeout: 30_000 });
  await page.getByLabel("Run output").getByText("Result — calculator: 42").waitFor();
  await page.getByText("Step s2 approved").waitFor();
}
