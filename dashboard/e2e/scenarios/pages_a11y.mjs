// Every main page: rendered without errors, screenshotted (light, dark and phone width), and checked with
// axe-core (WCAG 2.1 A/AA rules) for serious or critical violations in both themes.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { expect, newPage, settled, shot, signIn } from "../lib.mjs";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

async function audit(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }, resultTypes: ["violations"] }),
  );
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`);
}

const PHONE = new Set(["runs", "run-detail", "voice", "voice-session", "recommendations"]);

export default async function (browser, config) {
  const pages = [
    ["runs", "/runs", "Runs"],
    ["run-detail", `/runs/detail?id=${config.completedRun}`, config.completedRun],
    ["run-waiting", `/runs/detail?id=${config.waitingRun2}`, config.waitingRun2],
    ["agents", "/agents", "Agents"],
    ["agent", `/agents/detail?id=${config.editAgent}`, config.editAgentName],
    ["agent-versions", `/agents/detail?id=${config.editAgent}&tab=versions`, config.editAgentName],
    ["agent-new", "/agents/new", "New agent"],
    ["pipelines", "/pipelines", "Pipelines"],
    ["pipeline", `/pipelines/detail?id=${config.pipeline}`, "approval pipeline"],
    ["pipeline-schedule", `/pipelines/detail?id=${config.pipeline}&tab=schedule`, "approval pipeline"],
    ["pipeline-new", "/pipelines/new", "New pipeline"],
    ["pipeline-run", `/pipelines/run?id=${config.pipelineRun}`, config.pipelineRun],
    ["voice", "/voice", "Voice sessions"],
    ["voice-session", `/voice/session?id=${config.voiceSession}`, config.voiceSession],
    ["optimizer", `/optimizer?agent=${config.editAgent}`, "Optimizer"],
    ["optimizer-run", `/optimizer/run?id=${config.optimizerRun}`, config.optimizerRun],
    ["experiment", `/optimizer/experiment?id=${config.experiment}`, "vs"],
    ["recommendations", "/recommendations", "Recommendations"],
    ["usage", "/usage", "Usage and cost"],
    ["memory", "/memory?subject=e2e-subject&q=lisbon", "Memory"],
    ["settings-api-keys", "/settings/api-keys", "Settings"],
    ["settings-users", "/settings/users", "Settings"],
    ["settings-webhooks", "/settings/webhooks", "Settings"],
    ["settings-secrets", "/settings/secrets", "Settings"],
    ["settings-audit", "/settings/audit", "Settings"],
  ];
  const violations = [];
  for (const scheme of ["light", "dark"]) {
    const page = await newPage(browser, { colorScheme: scheme });
    await signIn(page, config.owner.email, config.password);
    for (const [name, path, heading] of pages) {
      await page.goto(path);
      await page.locator("h1").filter({ hasText: heading }).first().waitFor();
      await settled(page);
      await page.waitForTimeout(300); // charts settle their size
      const found = await audit(page);
      violations.push(...found.map((v) => `${scheme} ${path}: ${v}`));
      await shot(page, `${scheme}-${name}`);
    }
    await page.context().close();
  }
  const phone = await newPage(browser, { width: 390, height: 844 });
  await signIn(phone, config.owner.email, config.password);
  for (const [name, path, heading] of pages.filter(([name]) => PHONE.has(name))) {
    await phone.goto(path);
    await phone.locator("h1").filter({ hasText: heading }).first().waitFor();
    await settled(phone);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow <= 1, `${path} scrolls sideways at phone width (${overflow}px)`);
    violations.push(...(await audit(phone)).map((v) => `phone ${path}: ${v}`));
    await shot(phone, `phone-${name}`);
  }
  await phone.getByRole("button", { name: "Menu" }).click();
  await phone.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Agents" }).click();
  await phone.locator("h1").filter({ hasText: "Agents" }).waitFor();

  const signin = await newPage(browser);
  await signin.goto("/sign-in");
  await signin.getByRole("heading", { name: "Sign in to AImPact" }).waitFor();
  violations.push(...(await audit(signin)).map((v) => `sign-in: ${v}`));
  await shot(signin, "sign-in");
  expect(violations.length === 0, `serious accessibility violations:\n${violations.join("\n")}`);
}
