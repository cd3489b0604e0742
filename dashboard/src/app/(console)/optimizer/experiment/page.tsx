"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { Suspense } from "react";

import { api, call } from "@/api/client";
import { BarsChart } from "@/components/charts";
import { Badge, StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { ErrorBox, Loading } from "@/components/ui/Feedback";
import { Card, PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { formatScore } from "@/lib/format";
import { useIdParam } from "@/lib/url";

function ExperimentDetail() {
  const id = useIdParam();
  const queries = useQueryClient();
  const canWrite = useCan("optimizer:write");
  const experiment = useQuery({
    queryKey: ["experiment", id],
    queryFn: () => call(api.GET("/v1/experiments/{experiment_id}", { params: { path: { experiment_id: id } } })),
    enabled: Boolean(id),
    refetchInterval: (q) => (q.state.data?.status === "running" ? 5_000 : false),
  });
  const stop = useMutation({
    mutationFn: () => call(api.POST("/v1/experiments/{experiment_id}/stop", { params: { path: { experiment_id: id } } })),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ["experiment", id] }),
  });
  if (!id) return <ErrorBox error="No experiment id in the address." />;
  if (experiment.isPending) return <Loading />;
  if (experiment.error) return <ErrorBox error={experiment.error} />;
  const e = experiment.data;
  return (
    <div className="stack">
      <PageHeader
        crumbs={[{ href: `/optimizer?agent=${e.agent_id}`, label: "Optimizer" }]}
        title={
          <span className="row" style={{ alignItems: "center" }}>
            v{e.candidate_version} vs v{e.control_version} <StatusBadge status={e.status} />
          </span>
        }
        description={
          <>
            <span className="mono">{e.id}</span> · agent <Link href={`/agents/detail?id=${e.agent_id}`}>{e.agent_id}</Link> · started{" "}
            <Time iso={e.created_at} />
          </>
        }
        actions={
          canWrite &&
          e.status === "running" && (
            <Button variant="danger" busy={stop.isPending} onClick={() => stop.mutate()}>
              Stop
            </Button>
          )
        }
      />
      <ErrorBox error={stop.error} />
      <div className="card row" style={{ gap: 28 }}>
        <div className="stat">
          <span className="value">{Math.round(e.traffic * 100)}%</span>
          <span className="label">traffic asked for the candidate</span>
        </div>
        <div className="stat">
          <span className="value">{Math.round(e.candidate_share * 100)}%</span>
          <span className="label">new subjects now going to the candidate</span>
        </div>
        <div className="stat">
          <span className="value">{e.min_samples}</span>
          <span className="label">samples per arm before adapting</span>
        </div>
        <div className="stat">
          <span className="value">{e.metric}</span>
          <span className="label">metric</span>
        </div>
      </div>
      <Card title="Arms">
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Arms">
          <table>
            <caption className="sr-only">Arms</caption>
            <thead>
              <tr>
                <th scope="col">Arm</th>
                <th scope="col">Version</th>
                <th scope="col" className="num">
                  n
                </th>
                <th scope="col" className="num">
                  Mean
                </th>
                <th scope="col">P(best)</th>
              </tr>
            </thead>
            <tbody>
              {e.arms.map((arm) => (
                <tr key={arm.arm}>
                  <td>{arm.arm}</td>
                  <td>v{arm.version}</td>
                  <td className="num">{arm.n}</td>
                  <td className="num">{formatScore(arm.mean, 3)}</td>
                  <td>
                    <div className="row" style={{ alignItems: "center", gap: 8 }}>
                      <div className="meter" role="meter" aria-valuemin={0} aria-valuemax={1} aria-valuenow={arm.p_best} aria-label={`P(best) of ${arm.arm}`}>
                        <span style={{ width: `${arm.p_best * 100}%` }} />
                      </div>
                      {formatScore(arm.p_best, 3)}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <BarsChart
          label="Mean feedback and P(best) per arm"
          data={e.arms.map((a) => ({ label: `${a.arm} v${a.version}`, mean: a.mean ?? 0, p_best: a.p_best }))}
          series={[
            { key: "mean", name: "mean score" },
            { key: "p_best", name: "P(best)" },
          ]}
          format={(v) => v.toFixed(2)}
        />
      </Card>
      <Card title="Decision">
        {e.decision ? (
          <p>
            <Badge tone={e.decision === "promote" || e.decision === "winner" ? "ok" : e.decision === "rollback" ? "danger" : "neutral"}>{e.decision}</Badge> {e.reason}
          </p>
        ) : (
          <p className="muted">{e.reason ?? "No decision yet."}</p>
        )}
      </Card>
    </div>
  );
}

export default function ExperimentPage() {
  return (
    <Suspense fallback={<Loading />}>
      <ExperimentDetail />
    </Suspense>
  );
}
