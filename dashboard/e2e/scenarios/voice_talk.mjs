// Talk to an agent from the microphone: Chromium's fake capture device plays a spoken question (a WAV the test
// made with the platform's text to speech); the final transcript and the agent's reply appear live over the
// session's WebSocket, then its timing, and the turn is recorded on the session.
import { newPage, shot, signIn } from "../lib.mjs";

export const browserArgs = (config) => [
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  `--use-file-for-fake-audio-capture=${config.talkWav}`,
];

export default async function (browser, config) {
  const page = await newPage(browser);
  await signIn(page, config.owner.email, config.password);
  await page.goto(`/voice/session?id=${config.talkSession}`);
  await page.getByRole("button", { name: "Start talking" }).click();
  await page.getByText("listening", { exact: true }).waitFor({ timeout: 30_000 });
  const live = page.getByRole("log", { name: "Live conversation" });
  const heard = live.locator(".msg.user").filter({ has: page.locator(".who", { hasText: /^you$/ }) });
  await heard.filter({ hasText: /six|6/i }).first().waitFor({ timeout: 120_000 });
  const reply = live.locator(".msg.assistant").filter({ hasText: "42" }).first();
  await reply.waitFor({ timeout: 120_000 });
  await reply.locator(".who", { hasText: /turn \d+ ms/ }).waitFor({ timeout: 60_000 }); // spoken to the end, timed
  await shot(page, "voice-talk");
  await page.getByRole("button", { name: "Stop talking" }).click();
  await page.getByRole("button", { name: "Start talking" }).waitFor();
  // the fake device loops its file, and it may start with a sound of its own: the answered turn need not be turn 1
  const turn = page.getByRole("listitem", { name: /^Turn \d+$/ }).filter({ hasText: "42" }).first();
  await turn.waitFor({ timeout: 60_000 });
  await turn.getByText(/first audio \d/).waitFor();
}
