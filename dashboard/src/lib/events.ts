/**
 * Server-Sent Events over `fetch`: EventSource cannot send the `Authorization` header, and the
 * access token stays out of URLs (and so out of logs and history). Reconnects resume after the
 * last event id (`?after=`), exactly as `Last-Event-ID` would.
 */
import { bearer } from "@/api/client";

export type StreamEvent = { id: string; type: string; data: unknown };
export type StreamState = "connecting" | "live" | "reconnecting" | "ended";

type Follow = {
  signal: AbortSignal;
  onEvent: (event: StreamEvent) => void;
  onState?: (state: StreamState) => void;
  /** Events after which the stream is over (a clean end after one of them is final). */
  isFinal: (event: StreamEvent) => boolean;
};

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Parse SSE frames out of `buffer`; returns the events and the unparsed rest. */
export function parseFrames(buffer: string): { events: StreamEvent[]; rest: string } {
  const events: StreamEvent[] = [];
  const frames = buffer.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = frames.pop() ?? "";
  for (const frame of frames) {
    let id = "";
    let type = "message";
    const data: string[] = [];
    for (const line of frame.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) continue;
    const text = data.join("\n");
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* a non-JSON payload stays text */
    }
    events.push({ id, type, data: parsed });
  }
  return { events, rest };
}

/** Follow `path` until the run's stream ends, the signal aborts, or the run is gone. */
export async function followEvents(path: string, { signal, onEvent, onState, isFinal }: Follow): Promise<void> {
  let after = "";
  let backoff = 1000;
  onState?.("connecting");
  while (!signal.aborted) {
    let received = 0;
    let final = false;
    try {
      const url = after ? `${path}?after=${encodeURIComponent(after)}` : path;
      const response = await fetch(url, { headers: { Accept: "text/event-stream", ...(await bearer()) }, signal });
      if (response.status === 404 || response.status === 403 || response.status === 401) {
        onState?.("ended");
        return;
      }
      if (!response.ok || !response.body) {
        const wait = Number(response.headers.get("Retry-After") ?? 0) * 1000;
        onState?.("reconnecting");
        await sleep(Math.max(wait, backoff), signal);
        backoff = Math.min(backoff * 2, 15000);
        continue;
      }
      onState?.("live");
      backoff = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const parsed = parseFrames(buffer + value);
        buffer = parsed.rest;
        for (const event of parsed.events) {
          received += 1;
          if (event.id) after = event.id;
          final = isFinal(event);
          onEvent(event);
        }
      }
      if (final || received === 0) {
        onState?.("ended");
        return;
      }
    } catch {
      if (signal.aborted) return;
    }
    onState?.("reconnecting");
    await sleep(backoff, signal);
  }
}
