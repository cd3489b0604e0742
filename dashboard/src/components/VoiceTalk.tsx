"use client";
/** Talk to the session's agent through the microphone: the live transcript and reply, barge-in, interrupt. */
import { Badge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { Card } from "@/components/ui/Misc";
import type { TalkState, useVoiceTalk } from "@/lib/voiceTalk";

const PHASES: Record<TalkState["phase"], string> = {
  idle: "not connected",
  connecting: "connecting…",
  open: "listening",
  reconnecting: "reconnecting…",
  closed: "disconnected",
};

export function VoiceTalk({ talk }: { talk: ReturnType<typeof useVoiceTalk> }) {
  const { state } = talk;
  const connected = state.phase === "open" || state.phase === "connecting" || state.phase === "reconnecting";
  return (
    <Card
      title="Talk"
      actions={
        connected ? (
          <>
            <Button size="sm" onClick={talk.interrupt} disabled={state.phase !== "open"}>
              Interrupt the reply
            </Button>
            <Button size="sm" onClick={talk.stop}>
              Stop talking
            </Button>
          </>
        ) : (
          <Button size="sm" variant="primary" onClick={() => void talk.start()}>
            Start talking
          </Button>
        )
      }
    >
      <p className="row small" style={{ alignItems: "center", gap: 8 }} aria-live="polite">
        <Badge tone={state.phase === "open" ? "ok" : state.phase === "reconnecting" ? "warn" : "neutral"} live={state.phase === "open"}>
          {PHASES[state.phase]}
        </Badge>
        {state.hearing && <Badge tone="info">hearing you…</Badge>}
        {state.phase === "idle" && <span className="muted">Speak into the microphone; speaking while the agent answers interrupts it.</span>}
      </p>
      {state.detail && (
        <div className="alert alert-info" role="status">
          {state.detail}
        </div>
      )}
      <div className="chat" role="log" aria-label="Live conversation">
        {state.turns.map((t) => (
          <div key={t.turnId || "pending"} className="stack" style={{ gap: 6 }}>
            {t.transcript && (
              <div className="msg user">
                <span className="who">you{t.final ? "" : " (hearing…)"}</span>
                {t.transcript}
              </div>
            )}
            {(t.reply.length > 0 || t.heard !== null) && (
              <div className="msg assistant">
                <span className="who">
                  agent{t.heard !== null ? " (interrupted)" : t.done ? "" : " (speaking…)"}
                  {t.latency?.first_audio ? ` · first audio after ${Math.round(t.latency.first_audio)} ms` : ""}
                  {t.latency?.total ? ` · turn ${Math.round(t.latency.total)} ms` : ""}
                </span>
                {t.reply.filter(Boolean).join(" ")}
                {t.heard !== null && <div className="muted small">you heard: {t.heard || "nothing"}</div>}
              </div>
            )}
          </div>
        ))}
      </div>
      {state.events.length > 0 && (
        <details>
          <summary>Stream events ({state.events.length})</summary>
          <ol className="mono small" style={{ maxHeight: 240, overflow: "auto" }}>
            {state.events.map((e, i) => (
              <li key={`${e.id ?? e.type}-${i}`}>{JSON.stringify(e).slice(0, 200)}</li>
            ))}
          </ol>
        </details>
      )}
    </Card>
  );
}
