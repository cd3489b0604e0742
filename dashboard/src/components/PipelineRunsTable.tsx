"use client";
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";

import { api, call } from "@/api/client";
import { StatusBadge } from "@/components/ui/Badge";
import { Empty, ErrorBox, Loading } from "@/components/ui/Feedback";
import { Time } from "@/components/ui/Misc";
import { durationMs, formatDuration, formatUsd } from "@/lib/format";

export function PipelineRunsTable({ pipelineId }: { pipelineId: string }) {
  const runs = useQuery({
    queryKey: ["pipeline-runs", pipelineId],
    queryFn: () => call(api.GET("/v1/pipeline-runs", { params: { query: { pipeline_id: pipelineId, limit: 50 } } })),
    refetchInterval: 5_000,
  });
  if (runs.isPending) return <Loading />;
  if (runs.error) return <ErrorBox error={runs.error} />;
  if (runs.data.items.length === 0) return <Empty>No runs yet.</Empty>;
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label="Pipeline runs">
      <table>
        <caption className="sr-only">Pipeline runs</caption>
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col">Run</th>
            <th scope="col">Version</th>
            <th scope="col" className="hide-sm">
              Steps
            </th>
            <th scope="col" className="num hide-sm">
              Cost
            </th>
            <th scope="col" className="num hide-sm">
              Duration
            </th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {runs.data.items.map((r) => (
            <tr key={r.id}>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td>
                <Link className="row-link mono" href={`/pipelines/run?id=${r.id}`}>
                  {r.id}
                </Link>
                {r.rerun_of && <div className="muted small">re-run of {r.rerun_of}</div>}
              </td>
              <td>v{r.version}</td>
              <td className="hide-sm small">{r.steps.map((s) => `${s.id}: ${s.status}`).join(", ")}</td>
              <td className="num hide-sm">{formatUsd(r.usage.cost_usd)}</td>
              <td className="num hide-sm">{formatDuration(durationMs(r.created_at, r.updated_at))}</td>
              <td>
                <Time iso={r.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
