"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { Suspense } from "react";

import { api, call } from "@/api/client";
import { Badge, StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { ErrorBox, Loading } from "@/components/ui/Feedback";
import { Card, Json, PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { formatScore } from "@/lib/format";
import { useIdParam } from "@/lib/url";

function Verdict({ recorded, candidate }: { recorded: number | null; candidate: number | null }) {
  if (recorded === null || candidate === null) return null;
  if (candidate > recorded) return <Badge tone="ok">better</Badge>;
  if (candidate < recorded) return <Badge tone="danger">worse</Badge>;
  return <Badge>same score</Badge>;
}

function ReplayDetail() {
  const id = useIdParam();
  const queries = useQueryClient();
  const canWrite = useCan("optimizer:write");
  const replay = useQuery({
    queryKey: ["replay", id],
    queryFn: () => call(api.GET("/v1/replays/{replay_id}", { params: { path: { replay_id: id } } })),
    enabled: Boolean(id),
    refetchInterval: (q) => (q.state.data && ["queued", "running"].includes(q.state.data.status) ? 3_000 : false),
  });
  const cancel = useMutation({
    mutationFn: () => call(api.POST("/v1/replays/{replay_id}/cancel", { params: { path: { replay_id: id } } })),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ["replay", id] }),
  });
  if (!id) return <ErrorBox error="No replay id in the address." />;
  if (replay.isPending) return <Loading />;
  if (replay.error) return <ErrorBox error={replay.error} />;
  const r = replay.data;
  return (
    <div className="stack">
      <PageHeader
        crumbs={[{ href: `/optimizer?agent=${r.agent_id}`, label: "Optimizer" }]}
        title={
          <span className="row" style={{ alignItems: "center" }}>
            Replay with v{r.version} <StatusBadge status={r.status} />
          </span>
        }
        description={
          <>
            <span className="mono">{r.id}</span> · {r.run_ids.length} recorded runs · <Time iso={r.created_at} />
          </>
        }
        actions={
          canWrite &&
          ["queued", "running"].includes(r.status) && (
            <Button variant="danger" busy={cancel.isPending} onClick={() => cancel.mutate()}>
              Cancel
            </Button>
          )
        }
      />
      <ErrorBox error={cancel.error} />
      {r.summary && (
        <Card title="Summary">
          <Json value={r.summary} label="Summary" />
        </Card>
      )}
      {r.error && <Json value={r.error} label="Error" />}
      {(r.results ?? []).map((result) => (
        <Card
          key={result.run_id}
          title={
            <>
              <Link className="mono" href={`/runs/detail?id=${result.run_id}`}>
                {result.run_id}
              </Link>{" "}
              <StatusBadge status={result.outcome} /> <Verdict recorded={result.recorded_score} candidate={result.candidate_score} />
            </>
          }
        >
          <div className="side-by-side">
            <div>
              <h3>
                Recorded · score {formatScore(result.recorded_score)}
              </h3>
              <Json value={result.recorded_output} label={`Recorded output of ${result.run_id}`} />
              {result.recorded_reason && <p className="muted small">{result.recorded_reason}</p>}
            </div>
            <div>
              <h3>
                v{r.version} · score {formatScore(result.candidate_score)}
              </h3>
              <Json value={result.candidate_output} label={`Candidate output of ${result.run_id}`} />
              {result.candidate_reason && <p className="muted small">{result.candidate_reason}</p>}
            </div>
          </div>
          <p className="muted small" style={{ marginTop: 8 }}>
            {result.from_recording} tool call{result.from_recording === 1 ? "" : "s"} answered from the recording, {result.not_in_recording} not in it.
          </p>
          {result.error && <Json value={result.error} label="Error" />}
        </Card>
      ))}
    </div>
  );
}

export default function ReplayPage() {
  return (
    <Suspense fallback={<Loading />}>
      <ReplayDetail />
    </Suspense>
  );
}
