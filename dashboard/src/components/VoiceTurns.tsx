"use client";
/** A voice session's recorded turns: what was said and answered, both recordings, the latency of each stage. */
import Link from "next/link";

import type { Latency, VoiceTurn } from "@/api/types";
import { BarsChart, type BarDatum } from "@/components/charts";
import { Recording } from "@/components/Recording";
import { StatusBadge } from "@/components/ui/Badge";
import { Json, Time } from "@/components/ui/Misc";
import { formatDuration } from "@/lib/format";

const STAGES = [
  { key: "vad", name: "VAD" },
  { key: "stt", name: "speech to text" },
  { key: "agent", name: "agent" },
  { key: "tts", name: "text to speech" },
  { key: "other", name: "other" },
] as const;

/** The stages of a turn stacked to its total (what they do not account for is "other"). */
function stages(latency: Latency): Record<(typeof STAGES)[number]["key"], number> {
  const { vad, stt, agent, tts, total } = latency;
  return { vad, stt, agent, tts, other: Math.max(0, total - vad - stt - agent - tts) };
}

const ms = (value: number) => formatDuration(value);

/** Each turn's latency as one bar stacked by stage. */
export function LatencyChart({ turns }: { turns: VoiceTurn[] }) {
  const data: BarDatum[] = turns.filter((t) => t.latency_ms.total > 0).map((t) => ({ label: `#${t.seq}`, ...stages(t.latency_ms) }));
  if (!data.length) return <p className="muted">No turn has been timed yet.</p>;
  return <BarsChart data={data} series={STAGES.map((s) => ({ key: s.key, name: s.name }))} label="Latency per turn and stage (ms)" stacked format={(v) => `${Math.round(v)} ms`} />;
}

/** The stages and total; a streamed turn also shows what the user waited (end of speech → first reply audio). */
function LatencyLine({ latency }: { latency: Latency }) {
  return (
    <span className="muted small">
      VAD {ms(latency.vad)} · STT {ms(latency.stt)} · agent {ms(latency.agent)} · TTS {ms(latency.tts)} · <strong>total {ms(latency.total)}</strong>
      {latency.first_audio ? (
        <>
          {" "}
          · streamed: endpoint {ms(latency.endpoint ?? 0)} · agent&apos;s first words {ms(latency.agent_first_token ?? 0)} ·{" "}
          <strong>first audio {ms(latency.first_audio)}</strong>
        </>
      ) : null}
    </span>
  );
}

export function VoiceTurns({ turns }: { turns: VoiceTurn[] }) {
  if (!turns.length) return <p className="muted">No turns yet.</p>;
  return (
    <ol className="stack" aria-label="Turns" style={{ listStyle: "none", margin: 0, padding: 0 }}>
      {turns.map((t) => (
        <li key={t.turn_id} className="turn" aria-label={`Turn ${t.seq}`}>
          <div className="row" style={{ alignItems: "center", gap: 8 }}>
            <strong>Turn {t.seq}</strong> <StatusBadge status={t.status} /> <Time iso={t.created_at} />
            {t.run_id && (
              <Link className="small" href={`/runs/detail?id=${t.run_id}`}>
                agent run
              </Link>
            )}
          </div>
          <div className="side-by-side">
            <div className="msg user">
              <span className="who">user said</span>
              {t.transcript || <span className="muted">{t.status === "silent" ? "(no speech)" : "—"}</span>}
              <Recording url={t.user_audio_url} label={`What the user said in turn ${t.seq}`} />
            </div>
            <div className="msg assistant">
              <span className="who">agent replied{t.interrupted ? " (interrupted)" : ""}</span>
              {t.reply_text || <span className="muted">—</span>}
              <Recording url={t.reply_audio_url} label={`The agent's reply in turn ${t.seq}`} />
            </div>
          </div>
          <LatencyLine latency={t.latency_ms} />
          {t.error && <Json value={t.error} label={`Error of turn ${t.seq}`} />}
        </li>
      ))}
    </ol>
  );
}
