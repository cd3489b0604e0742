/**
 * The voice session's WebSocket (`/v1/voice/sessions/{id}/stream`): binary PCM16 16 kHz frames and JSON
 * control messages up; JSON events (each with an `id`) and binary reply audio down. A WebSocket cannot send
 * an `Authorization` header, so the access token goes in `?token=`. A dropped connection is resumed with
 * `&last_event_id=`; a normal close, 1011 and the 44xx codes are final (4401 once more after a token refresh).
 */
import { currentToken, refresh } from "@/lib/session";

export type VoiceEvent = { id?: string; type: string } & Record<string, unknown>;
export type StreamPhase = "connecting" | "open" | "reconnecting" | "closed";

export const CLOSE_REASONS: Record<number, string> = {
  1011: "The speech engines could not start.",
  4400: "The stream refused the request.",
  4401: "The stream refused the credentials; sign in again.",
  4403: "Your role may not talk in voice sessions (voice:write).",
  4404: "There is no such voice session.",
  4409: "Another stream of this session is open (another tab or device); close it first.",
  4410: "The session has ended.",
  4429: "Too many streams are open; try again shortly.",
};
const RETRIES_MS = [500, 1_000, 2_000, 4_000, 8_000];

type Handlers = {
  onEvent: (event: VoiceEvent) => void;
  onAudio: (pcm: ArrayBuffer) => void;
  onPhase: (phase: StreamPhase, detail?: string) => void;
};

export class VoiceStream {
  private socket: WebSocket | null = null;
  private lastEventId: string | null = null;
  private attempt = 0;
  private closing = false;
  private ended = false;
  private refreshed = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly sessionId: string,
    private readonly handlers: Handlers,
  ) {}

  async connect(): Promise<void> {
    this.handlers.onPhase(this.attempt ? "reconnecting" : "connecting");
    const token = await currentToken();
    if (this.closing) return;
    if (!token) {
      this.finish(CLOSE_REASONS[4401]);
      return;
    }
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ token });
    if (this.lastEventId) query.set("last_event_id", this.lastEventId);
    const socket = new WebSocket(`${scheme}://${window.location.host}/v1/voice/sessions/${encodeURIComponent(this.sessionId)}/stream?${query}`);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => this.handlers.onPhase("open");
    socket.onmessage = (message: MessageEvent<ArrayBuffer | string>) => this.receive(message.data);
    socket.onclose = (event) => this.closed(event.code, event.reason);
    this.socket = socket;
  }

  private receive(data: ArrayBuffer | string): void {
    if (typeof data !== "string") {
      this.handlers.onAudio(data);
      return;
    }
    let event: VoiceEvent;
    try {
      event = JSON.parse(data) as VoiceEvent;
    } catch {
      return;
    }
    if (typeof event.id === "string") this.lastEventId = event.id;
    if (event.type === "ready") this.attempt = 0;
    if (event.type === "ended") this.ended = true;
    this.handlers.onEvent(event);
  }

  private closed(code: number, reason: string): void {
    this.socket = null;
    if (this.closing || this.ended) return this.finish();
    if (code === 4401 && !this.refreshed) {
      this.refreshed = true; // the token may have expired between its check and the handshake
      void refresh().then(() => this.connect());
      return;
    }
    const known = CLOSE_REASONS[code];
    if (known) return this.finish(reason ? `${known} (${reason})` : known);
    if (code === 1000) return this.finish("The stream was closed.");
    const wait = RETRIES_MS[this.attempt];
    if (wait === undefined) return this.finish(`The stream closed (${code}${reason ? `: ${reason}` : ""}) and could not be resumed.`);
    this.attempt += 1;
    this.handlers.onPhase("reconnecting");
    this.timer = setTimeout(() => void this.connect(), wait);
  }

  private finish(detail?: string): void {
    this.closing = true;
    this.handlers.onPhase("closed", detail);
  }

  get open(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  sendAudio(pcm: ArrayBuffer): void {
    if (this.open) this.socket?.send(pcm);
  }

  control(type: "end" | "interrupt"): void {
    if (this.open) this.socket?.send(JSON.stringify({ type }));
  }

  close(): void {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.close(1000);
    this.socket = null;
    this.handlers.onPhase("closed");
  }
}
