"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { Suspense } from "react";

import { api, call } from "@/api/client";
import { agentNames, useAgents } from "@/api/queries";
import type { VoiceSession } from "@/api/types";
import { VoiceTalk } from "@/components/VoiceTalk";
import { LatencyChart, VoiceTurns } from "@/components/VoiceTurns";
import { StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Card, Json, PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { durationMs, formatDuration } from "@/lib/format";
import { useIdParam } from "@/lib/url";
import { useVoiceTalk } from "@/lib/voiceTalk";

function median(values: number[]): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function Stats({ s }: { s: VoiceSession }) {
  const totals = (s.turns ?? []).filter((t) => t.latency_ms.total > 0).map((t) => t.latency_ms.total);
  return (
    <div className="card row" style={{ gap: 28 }}>
      <div className="stat">
        <span className="value">{s.turn_count}</span>
        <span className="label">turns</span>
      </div>
      <div className="stat">
        <span className="value">{formatDuration(median(totals))}</span>
        <span className="label">median turn latency</span>
      </div>
      <div className="stat">
        <span className="value">{formatDuration(durationMs(s.created_at, s.ended_at))}</span>
        <span className="label">{s.ended_at ? "lasted" : "open for"}</span>
      </div>
      <div className="stat">
        <span className="value">{formatDuration(s.idle_timeout_s * 1000)}</span>
        <span className="label">idle timeout</span>
      </div>
      {s.end_reason && (
        <div className="stat">
          <span className="value">{s.end_reason.replace(/_/g, " ")}</span>
          <span className="label">end reason</span>
        </div>
      )}
    </div>
  );
}

function SessionDetail() {
  const id = useIdParam();
  const queries = useQueryClient();
  const notify = useToast();
  const canTalk = useCan("voice:write");
  const names = agentNames(useAgents().data?.items);
  const talk = useVoiceTalk(id);
  const session = useQuery({
    queryKey: ["voice-session", id],
    queryFn: () => call(api.GET("/v1/voice/sessions/{session_id}", { params: { path: { session_id: id } } })),
    enabled: Boolean(id),
    refetchInterval: (q) => (q.state.data?.status === "active" ? 5_000 : false),
  });
  const end = useMutation({
    mutationFn: async () => {
      if (!talk.end()) await call(api.POST("/v1/voice/sessions/{session_id}/end", { params: { path: { session_id: id } } }));
    },
    onSuccess: () => {
      notify("Ending the session");
      void queries.invalidateQueries({ queryKey: ["voice-session", id] });
    },
  });

  if (!id) return <ErrorBox error="No session id in the address (…/voice/session?id=vs_…)." />;
  if (session.isPending) return <Loading label="Loading the voice session…" />;
  if (session.error) return <ErrorBox error={session.error} />;
  const s = session.data;
  const active = s.status === "active";
  return (
    <div className="stack">
      <PageHeader
        crumbs={[{ href: "/voice", label: "Voice sessions" }]}
        title={
          <span className="row" style={{ alignItems: "center" }}>
            <span className="mono">{s.id}</span> <StatusBadge status={s.status} />
          </span>
        }
        description={
          <>
            <Link href={`/agents/detail?id=${s.agent_id}`}>{names.get(s.agent_id) ?? s.agent_id}</Link> v{s.agent_version} · thread{" "}
            <span className="mono">{s.thread_id}</span>
            {s.subject && <> · subject {s.subject}</>} · started <Time iso={s.created_at} />
          </>
        }
        actions={
          <>
            <a className="btn" href={s.temporal.ui_url} target="_blank" rel="noreferrer">
              Open in Temporal UI ↗
            </a>
            {canTalk && active && (
              <Button variant="danger" busy={end.isPending} onClick={() => end.mutate()}>
                End session
              </Button>
            )}
          </>
        }
      />
      <ErrorBox error={end.error} />
      <Stats s={s} />
      {canTalk && (active || talk.state.phase !== "idle") && <VoiceTalk talk={talk} />}
      <Card title="Latency per turn">
        <LatencyChart turns={s.turns ?? []} />
      </Card>
      <Card title="Turns">
        <VoiceTurns turns={s.turns ?? []} />
      </Card>
      {s.error && (
        <Card title="Error">
          <Json value={s.error} label="Session error" />
        </Card>
      )}
    </div>
  );
}

export default function VoiceSessionPage() {
  return (
    <Suspense fallback={<Loading />}>
      <SessionDetail />
    </Suspense>
  );
}
