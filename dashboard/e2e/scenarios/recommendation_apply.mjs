// A recommendation mined from run history is applied from the list: its status turns "applied" and the
// change it made (a new agent version) is named on it. The filters live in the URL.
import { expect, newPage, shot, signIn } from "../lib.mjs";

export default async function (browser, config) {
  const page = await newPage(browser);
  await signIn(page, config.owner.email, config.password);
  await page.goto("/recommendations?status=open");
  await page.getByRole("heading", { name: "Recommendations", level: 1 }).waitFor();
  expect((await page.getByLabel("Status").inputValue()) === "open", "the status filter does not show the URL's");
  const list = page.getByRole("list", { name: "Recommendations" });
  const card = list.getByRole("listitem").filter({ has: page.getByRole("link", { name: config.recommendedAgentNames.applyRec, exact: true }) });
  await card.getByText("95% CI").first().waitFor();
  await card.getByText("failed tool calls per 1,000 runs", { exact: false }).first().waitFor();
  await shot(page, "recommendations-open");

  await card.getByRole("button", { name: "Apply" }).click();
  await page.getByText(/^Applied: /).waitFor();
  // applied: it leaves the open list; with any status it shows what apply made
  await card.waitFor({ state: "detached" });
  await page.getByLabel("Status").selectOption("");
  await page.waitForURL((url) => !url.searchParams.has("status"));
  await card.getByText("applied", { exact: true }).waitFor();
  await card.getByText("made agent version v2").waitFor();
  expect((await card.getByRole("button", { name: "Apply" }).count()) === 0, "an applied recommendation still offers Apply");
  const other = list.getByRole("listitem").filter({ has: page.getByRole("link", { name: config.recommendedAgentNames.openRec, exact: true }) });
  await other.getByRole("button", { name: "Apply" }).waitFor();
  await shot(page, "recommendations");
}
