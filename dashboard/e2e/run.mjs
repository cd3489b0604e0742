// `node e2e/run.mjs <scenario>`: one browser scenario against a running stack (tests/dashboard drives these).
// Configuration comes from the environment: DASHBOARD_URL, SCREENSHOT_DIR, CHROMIUM and E2E (JSON: users, ids).
import { scenario } from "./lib.mjs";

const name = process.argv[2];
const config = JSON.parse(process.env.E2E ?? "{}");
let module;
try {
  module = await import(`./scenarios/${name}.mjs`);
} catch (error) {
  console.error(`unknown scenario ${name}: ${error.message}`);
  process.exit(2);
}
// a scenario may export `browserArgs(config)`: chromium flags of its own (a fake microphone, …)
await scenario(name, (browser) => module.default(browser, config), module.browserArgs?.(config) ?? []);
