// The dashboard's figures (bench/dashboard.py runs this against a stack with 10,000 runs):
// - JavaScript the first pages ship, cold cache: bytes on the wire (gzip) and uncompressed;
// - time to interactive of the runs list: from navigation start until the hydrated app has put the
//   first 50 runs on screen (rows are rendered by the client after hydration and its API calls), for a
//   cold first load and for repeat loads; long tasks after that moment are reported too;
// - the same page's API call alone: `GET /v1/runs?limit=50` with the same token, timed in the page.
import { launch, newPage } from "./lib.mjs";

const rounds = Number(process.env.ROUNDS ?? 10);
const credentials = { email: process.env.EMAIL, password: process.env.PASSWORD };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.9) - 1)];

/** Records when the runs table first holds 50 rows, and the long tasks of the page. */
const PROBE = () => {
  window.__longTasks = [];
  new PerformanceObserver((list) => list.getEntries().forEach((e) => window.__longTasks.push([e.startTime, e.duration]))).observe({
    type: "longtask",
    buffered: true,
  });
  new MutationObserver((_, observer) => {
    if (document.querySelectorAll('[data-testid="runs-table"] tbody tr').length >= 50) {
      window.__rowsAt = performance.now();
      observer.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
};

function scriptBytes(page) {
  const scripts = [];
  page.on("response", async (response) => {
    if (response.request().resourceType() !== "script") return;
    const sizes = await response.request().sizes();
    const body = await response.body().catch(() => Buffer.alloc(0));
    scripts.push({ wire: sizes.responseBodySize, raw: body.length });
  });
  return () => ({
    files: scripts.length,
    wire_bytes: scripts.reduce((sum, s) => sum + s.wire, 0),
    raw_bytes: scripts.reduce((sum, s) => sum + s.raw, 0),
  });
}

async function loadRuns(page) {
  await page.goto("/runs", { waitUntil: "commit" });
  await page.waitForFunction(() => window.__rowsAt !== undefined, undefined, { timeout: 30_000, polling: 50 });
  await page.waitForTimeout(300);
  return page.evaluate(() => {
    const after = window.__longTasks.filter(([start]) => start >= window.__rowsAt - 50);
    return { rows_ms: window.__rowsAt, longest_task_after_ms: Math.max(0, ...after.map(([, d]) => d)) };
  });
}

const browser = await launch();
try {
  const signInPage = await newPage(browser);
  const signInJs = scriptBytes(signInPage);
  await signInPage.goto("/sign-in");
  await signInPage.getByRole("button", { name: "Sign in" }).waitFor();
  await signInPage.waitForTimeout(500);
  const signIn = signInJs();

  const page = await newPage(browser);
  await page.addInitScript(PROBE);
  const opened = await page.context().request.post("/v1/auth/session", { data: credentials });
  if (!opened.ok()) throw new Error(`sign-in failed: ${opened.status()}`);
  const runsJs = scriptBytes(page);
  const cold = await loadRuns(page);
  await page.waitForTimeout(500);
  const runs = runsJs();

  const warm = [];
  for (let i = 0; i < rounds; i++) warm.push(await loadRuns(page));
  const api = await page.evaluate(async (n) => {
    const refreshed = await fetch("/v1/auth/session/refresh", { method: "POST" }).then((r) => r.json());
    const headers = { Authorization: `Bearer ${refreshed.access_token}` };
    const times = [];
    for (let i = 0; i < n + 2; i++) {
      const t0 = performance.now();
      const body = await fetch("/v1/runs?limit=50", { headers, cache: "no-store" }).then((r) => r.json());
      if (body.items.length !== 50) throw new Error("expected 50 runs");
      if (i >= 2) times.push(performance.now() - t0); // two warm-up calls
    }
    return times;
  }, rounds * 2);
  const rows = warm.map((w) => w.rows_ms);
  console.log(
    JSON.stringify({
      sign_in_js: signIn,
      runs_js: runs,
      tti_cold_ms: cold.rows_ms,
      tti_warm_ms: { median: median(rows), p90: p90(rows) },
      longest_task_after_ms: Math.max(cold.longest_task_after_ms, ...warm.map((w) => w.longest_task_after_ms)),
      api_ms: { median: median(api), p90: p90(api) },
    }),
  );
} finally {
  await browser.close();
}
