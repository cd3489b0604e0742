// A voice session's page: its spoken turn with both recordings playable (fetched with the token), the
// latency per stage; then a new session is started from the list and ended from its page.
import { expect, newPage, shot, signIn } from "../lib.mjs";

export default async function (browser, config) {
  const page = await newPage(browser);
  await signIn(page, config.owner.email, config.password);
  await page.goto("/voice");
  await page.locator(`a[href="/voice/session?id=${config.voiceSession}"]`).click();
  await page.waitForURL(/\/voice\/session\?id=vs_/);
  const turn = page.getByRole("listitem", { name: "Turn 1" });
  await turn.getByText(/six|6/i).first().waitFor();
  await turn.getByText("42").first().waitFor();
  for (const label of ["What the user said in turn 1", "The agent's reply in turn 1"]) {
    const audio = turn.getByLabel(label);
    await audio.waitFor();
    const src = await audio.getAttribute("src");
    expect(src?.startsWith("blob:"), `${label}: not an object URL (${src})`);
    const seconds = await audio.evaluate(
      (el) => new Promise((resolve) => (el.readyState >= 1 ? resolve(el.duration) : el.addEventListener("loadedmetadata", () => resolve(el.duration)))),
    );
    expect(seconds > 0.5, `${label}: ${seconds} s of audio`);
  }
  await turn.getByText(/total \d/).waitFor();
  await page.getByRole("figure", { name: "Latency per turn and stage (ms)" }).waitFor();
  await page.getByRole("button", { name: "Start talking" }).waitFor();
  await shot(page, "voice-session");

  await page.goto("/voice");
  await page.getByRole("button", { name: "Start a voice session" }).click();
  const dialog = page.getByRole("dialog", { name: "Start a voice session" });
  await dialog.getByLabel("Agent").selectOption(config.editAgent);
  await dialog.getByRole("button", { name: "Start" }).click();
  await page.waitForURL(/\/voice\/session\?id=vs_/);
  const id = new URL(page.url()).searchParams.get("id");
  expect(id !== config.voiceSession, "the dialog opened the old session");
  await page.locator("h1").getByText("active", { exact: true }).waitFor();
  await page.getByRole("button", { name: "End session" }).click();
  await page.locator("h1").getByText("ended", { exact: true }).waitFor({ timeout: 30_000 });
  expect((await page.getByRole("button", { name: "End session" }).count()) === 0, "an ended session still offers End session");
  console.log(JSON.stringify({ session_id: id }));
}
