// A viewer sees every page it may read and no control that would answer 403.
import { expect, newPage, settled, signIn } from "../lib.mjs";

const WRITE_BUTTONS = [
  "Start a run", "New agent", "Edit", "Archive", "Cancel run", "Retry from the failed step", "Approve", "Reject",
  "Send", "Send feedback", "Run pipeline", "New pipeline", "Roll back", "Promote", "Save schedule", "Re-run",
  "New dataset", "Start an optimizer run", "Start an experiment", "Start a replay", "Stop", "Erase this subject",
  "Create key", "Add user", "Add webhook", "Save secret", "Delete", "Revoke",
  "Start a voice session", "End session", "Start talking", "Apply", "Dismiss", "Refresh recommendations",
];

async function writeControls(page) {
  const found = [];
  for (const name of WRITE_BUTTONS) {
    for (const role of ["button", "link"]) {
      const count = await page.getByRole(role, { name: new RegExp(`^${name}`) }).count();
      if (count) found.push(`${role} "${name}" ×${count}`);
    }
  }
  return found;
}

export default async function (browser, config) {
  const page = await newPage(browser);
  await signIn(page, config.viewer.email, config.password);
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Runs" }).waitFor();
  const links = await nav.getByRole("link").allInnerTexts();
  expect(!links.includes("Settings"), `a viewer is offered Settings: ${links.join(", ")}`);
  const pages = [
    ["/runs", "Runs"],
    [`/runs/detail?id=${config.completedRun}`, config.completedRun],
    [`/runs/detail?id=${config.waitingRun2}`, config.waitingRun2],
    ["/agents", "Agents"],
    [`/agents/detail?id=${config.editAgent}`, config.editAgentName],
    [`/agents/detail?id=${config.editAgent}&tab=versions`, config.editAgentName],
    ["/pipelines", "Pipelines"],
    [`/pipelines/detail?id=${config.pipeline}`, "approval pipeline"],
    [`/pipelines/detail?id=${config.pipeline}&tab=schedule`, "approval pipeline"],
    [`/pipelines/run?id=${config.pipelineRun}`, config.pipelineRun],
    [`/optimizer?agent=${config.editAgent}`, "Optimizer"],
    ["/usage", "Usage and cost"],
    ["/memory?subject=e2e-subject", "Memory"],
    ["/voice", "Voice sessions"],
    [`/voice/session?id=${config.voiceSession}`, config.voiceSession],
    ["/recommendations", "Recommendations"],
  ];
  const offending = [];
  for (const [path, heading] of pages) {
    await page.goto(path);
    await page.locator("h1").filter({ hasText: heading }).first().waitFor();
    await settled(page);
    const found = await writeControls(page);
    if (found.length) offending.push(`${path}: ${found.join(", ")}`);
  }
  expect(offending.length === 0, `write controls shown to a viewer:\n${offending.join("\n")}`);
  // the pages above had something to act on: an open recommendation, an active session with a turn
  await page.goto("/recommendations?status=open");
  await page.getByRole("link", { name: config.recommendedAgentNames.openRec, exact: true }).waitFor();
  await page.goto(`/voice/session?id=${config.voiceSession}`);
  await page.getByRole("listitem", { name: "Turn 1" }).waitFor();
  expect((await writeControls(page)).length === 0, "a viewer is offered voice controls");
  await page.goto("/settings/api-keys");
  await page.getByText("Your role has no settings to manage.").or(page.getByRole("heading", { name: "Settings" })).first().waitFor();
  expect((await writeControls(page)).length === 0, "a viewer is offered settings controls");
}
