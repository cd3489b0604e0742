"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { Suspense } from "react";

import { api, call } from "@/api/client";
import { ScoresChart } from "@/components/charts";
import { Badge, StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Card, Json, PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { formatNumber, formatScore, formatUsd } from "@/lib/format";
import { useIdParam } from "@/lib/url";

function OptimizerRun() {
  const id = useIdParam();
  const queries = useQueryClient();
  const notify = useToast();
  const canWrite = useCan("optimizer:write");
  const canPromote = useCan("agents:write");
  const run = useQuery({
    queryKey: ["optimizer-run", id],
    queryFn: () => call(api.GET("/v1/optimizer/runs/{optimizer_run_id}", { params: { path: { optimizer_run_id: id } } })),
    enabled: Boolean(id),
    refetchInterval: (q) => (q.state.data && ["queued", "running"].includes(q.state.data.status) ? 3_000 : false),
  });
  const cancel = useMutation({
    mutationFn: () => call(api.POST("/v1/optimizer/runs/{optimizer_run_id}/cancel", { params: { path: { optimizer_run_id: id } } })),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ["optimizer-run", id] }),
  });
  const promote = useMutation({
    mutationFn: ({ agent, version }: { agent: string; version: number }) =>
      call(api.POST("/v1/agents/{agent_id}/versions/{version}/promote", { params: { path: { agent_id: agent, version } } })),
    onSuccess: (_, { version }) => {
      notify(`v${version} is now current`);
      void queries.invalidateQueries({ queryKey: ["agent-versions"] });
    },
  });
  if (!id) return <ErrorBox error="No optimizer run id in the address." />;
  if (run.isPending) return <Loading />;
  if (run.error) return <ErrorBox error={run.error} />;
  const r = run.data;
  const scored = r.candidates.filter((c) => c.score !== null);
  const points = scored.map((c) => ({
    label: `v${c.version}`,
    score: c.score ?? 0,
    lo: c.ci?.[0] ?? c.score ?? 0,
    hi: c.ci?.[1] ?? c.score ?? 0,
  }));
  return (
    <div className="stack">
      <PageHeader
        crumbs={[{ href: `/optimizer?agent=${r.agent_id}`, label: "Optimizer" }]}
        title={
          <span className="row" style={{ alignItems: "center" }}>
            <span className="mono">{r.id}</span> <StatusBadge status={r.status} />
          </span>
        }
        description={
          <>
            agent <Link href={`/agents/detail?id=${r.agent_id}&tab=versions`}>{r.agent_id}</Link> · baseline v{r.baseline_version} · started{" "}
            <Time iso={r.created_at} />
          </>
        }
        actions={
          <>
            {canPromote && r.winner !== null && !r.promoted && r.status === "completed" && (
              <Button variant="primary" busy={promote.isPending} onClick={() => promote.mutate({ agent: r.agent_id, version: r.winner! })}>
                Promote v{r.winner}
              </Button>
            )}
            {canWrite && ["queued", "running"].includes(r.status) && (
              <Button variant="danger" busy={cancel.isPending} onClick={() => cancel.mutate()}>
                Cancel
              </Button>
            )}
          </>
        }
      />
      <ErrorBox error={cancel.error ?? promote.error} />
      <Card title="Decision">
        <p>
          {r.winner !== null ? (
            <>
              Winner <strong>v{r.winner}</strong> {r.promoted ? <Badge tone="ok">promoted</Badge> : <Badge>not promoted</Badge>}
            </>
          ) : (
            <span className="muted">{r.status === "completed" ? "No candidate beat the baseline." : "Not decided yet."}</span>
          )}
        </p>
        {r.reason && <p>{r.reason}</p>}
        {r.error && <Json value={r.error} label="Error" />}
      </Card>
      <Card title="Candidates' scores (95% intervals)">
        {points.length ? <ScoresChart points={points} label="Validation score of each candidate with its interval" /> : <p className="muted">No scores yet.</p>}
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Candidates" style={{ marginTop: 12 }}>
          <table>
            <caption className="sr-only">Candidates</caption>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Strategy</th>
                <th scope="col" className="num">
                  Score
                </th>
                <th scope="col" className="num">
                  Interval
                </th>
                <th scope="col" className="num">
                  n
                </th>
                <th scope="col">Stage</th>
                <th scope="col" className="hide-sm">
                  Note
                </th>
              </tr>
            </thead>
            <tbody>
              {r.candidates.map((c) => (
                <tr key={c.version}>
                  <td>
                    v{c.version} {c.version === r.winner && <Badge tone="ok">winner</Badge>}
                  </td>
                  <td>{c.strategy}</td>
                  <td className="num">{formatScore(c.score, 3)}</td>
                  <td className="num">{c.ci ? `[${formatScore(c.ci[0], 2)}, ${formatScore(c.ci[1], 2)}]` : "—"}</td>
                  <td className="num">{c.n}</td>
                  <td>{c.stage}</td>
                  <td className="hide-sm small">{c.note}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
      <div className="grid-2">
        <Card title="Budget and usage">
          <dl className="kv">
            <dt>Metric</dt>
            <dd className="mono">{JSON.stringify(r.metric)}</dd>
            <dt>Strategies</dt>
            <dd>{r.strategies.join(", ")}</dd>
            <dt>Budget</dt>
            <dd className="mono">{JSON.stringify(r.budget)}</dd>
            <dt>Tokens</dt>
            <dd>
              {formatNumber(r.usage.input_tokens)} in · {formatNumber(r.usage.output_tokens)} out
            </dd>
            <dt>Cost</dt>
            <dd>{formatUsd(r.usage.cost_usd)}</dd>
          </dl>
        </Card>
        <Card title="Progress">
          <Json value={r.progress} label="Progress" />
        </Card>
      </div>
    </div>
  );
}

export default function OptimizerRunPage() {
  return (
    <Suspense fallback={<Loading />}>
      <OptimizerRun />
    </Suspense>
  );
}
