"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { Suspense, useState } from "react";

import { api, call } from "@/api/client";
import type { PipelineStep } from "@/api/types";
import { ApprovalControl } from "@/components/ApprovalControl";
import { LiveBadge } from "@/components/LiveBadge";
import { PipelineGraph } from "@/components/PipelineGraph";
import { StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, Json, PageHeader, Time } from "@/components/ui/Misc";
import { Waterfall, type WaterfallStep } from "@/components/Waterfall";
import { useCan } from "@/lib/auth";
import { durationMs, formatDuration, formatUsd } from "@/lib/format";
import { stepsOf } from "@/lib/graph";
import { useLiveEvents } from "@/lib/live";
import { useIdParam } from "@/lib/url";

const FINAL = new Set(["completed", "failed", "cancelled"]);

function toWaterfall(step: PipelineStep): WaterfallStep {
  const notes = [step.reused && "reused from the earlier run", step.items != null && `${step.items} items`].filter(Boolean);
  return { ...step, label: step.id, kind: step.type, note: notes.join(" · ") || undefined };
}

function PipelineRunDetail() {
  const id = useIdParam();
  const router = useRouter();
  const queries = useQueryClient();
  const notify = useToast();
  const canApprove = useCan("runs:approve");
  const canCancel = useCan("runs:cancel");
  const canRerun = useCan("runs:start");
  const [selected, setSelected] = useState<string | null>(null);
  const [fromStep, setFromStep] = useState("");
  const run = useQuery({
    queryKey: ["pipeline-run", id],
    queryFn: () => call(api.GET("/v1/pipeline-runs/{pipeline_run_id}", { params: { path: { pipeline_run_id: id } } })),
    enabled: Boolean(id),
    refetchInterval: (q) => (q.state.data && !FINAL.has(q.state.data.status) ? 5_000 : false), // under the stream
  });
  const pipelineId = run.data?.pipeline_id;
  const version = run.data?.version;
  const definition = useQuery({
    queryKey: ["pipeline-version", pipelineId, version],
    queryFn: () => call(api.GET("/v1/pipelines/{pipeline_id}/versions/{version}", { params: { path: { pipeline_id: pipelineId!, version: version! } } })),
    enabled: Boolean(pipelineId && version),
    staleTime: Infinity,
  });
  const live = useLiveEvents(id ? `/v1/pipeline-runs/${encodeURIComponent(id)}/events` : null, [["pipeline-run", id]], (e) =>
    ["pipeline_run.completed", "pipeline_run.failed", "pipeline_run.cancelled"].includes(e.type),
  );
  const refresh = () => void queries.invalidateQueries({ queryKey: ["pipeline-run", id] });
  const cancel = useMutation({
    mutationFn: () => call(api.POST("/v1/pipeline-runs/{pipeline_run_id}/cancel", { params: { path: { pipeline_run_id: id } } })),
    onSuccess: () => {
      notify("Cancel requested");
      refresh();
    },
  });
  const rerun = useMutation({
    mutationFn: (step: string) =>
      call(api.POST("/v1/pipeline-runs/{pipeline_run_id}/rerun", { params: { path: { pipeline_run_id: id } }, body: { from_step: step } })),
    onSuccess: (next) => router.push(`/pipelines/run?id=${next.id}`),
  });
  const decide = async (stepId: string, decision: "approve" | "reject", comment: string) => {
    await call(
      api.POST("/v1/pipeline-runs/{pipeline_run_id}/approvals/{step_id}", {
        params: { path: { pipeline_run_id: id, step_id: stepId } },
        body: { decision, comment: comment || null },
      }),
    );
    notify(decision === "approve" ? `Step ${stepId} approved` : `Step ${stepId} rejected`);
    refresh();
  };
  if (!id) return <ErrorBox error="No pipeline run id in the address." />;
  if (run.isPending) return <Loading />;
  if (run.error) return <ErrorBox error={run.error} />;
  const r = run.data;
  const graphSteps = stepsOf(definition.data?.definition);
  const status = new Map(r.steps.map((s) => [s.id, s.status]));
  const prompts = new Map(
    ((definition.data?.definition as { steps?: { id?: string; prompt?: string }[] } | undefined)?.steps ?? []).map((s) => [s.id ?? "", s.prompt ?? null]),
  );
  const steps = r.steps.map(toWaterfall);
  const focus = selected ? r.steps.find((s) => s.id === selected) : undefined;
  return (
    <div className="stack">
      <PageHeader
        crumbs={[
          { href: "/pipelines", label: "Pipelines" },
          { href: `/pipelines/detail?id=${r.pipeline_id}&tab=runs`, label: r.pipeline_id },
        ]}
        title={
          <span className="row" style={{ alignItems: "center" }}>
            <span className="mono">{r.id}</span> <StatusBadge status={r.status} /> <LiveBadge state={live.state} />
          </span>
        }
        description={
          <>
            v{r.version} · started <Time iso={r.created_at} /> · {formatDuration(durationMs(r.created_at, FINAL.has(r.status) ? r.updated_at : null))} ·{" "}
            {formatUsd(r.usage.cost_usd)}
            {r.rerun_of && (
              <>
                {" "}
                · re-run of <Link href={`/pipelines/run?id=${r.rerun_of}`}>{r.rerun_of}</Link>
              </>
            )}
          </>
        }
        actions={
          <>
            <a className="btn" href={r.temporal.ui_url} target="_blank" rel="noreferrer">
              Open in Temporal UI ↗
            </a>
            {canCancel && !FINAL.has(r.status) && (
              <Button variant="danger" busy={cancel.isPending} onClick={() => cancel.mutate()}>
                Cancel run
              </Button>
            )}
          </>
        }
      />
      <ErrorBox error={cancel.error ?? rerun.error} />
      {r.steps
        .filter((s) => s.status === "waiting_approval" && canApprove)
        .map((s) => (
          <ApprovalControl key={s.id} stepId={s.id} prompt={prompts.get(s.id)} onDecide={(d, c) => decide(s.id, d, c)} />
        ))}
      <Card title="Graph">
        {definition.error ? <ErrorBox error={definition.error} /> : <PipelineGraph steps={graphSteps} status={status} selected={selected} onSelect={setSelected} label="Steps and their status" />}
        {focus && (
          <div className="stack" style={{ marginTop: 12, gap: 8 }}>
            <h3>
              Step {focus.id} <StatusBadge status={focus.status} />
            </h3>
            <Json value={focus.output ?? focus.error} label={`Step ${focus.id}`} />
          </div>
        )}
      </Card>
      <Card title="Steps">
        <Waterfall steps={steps} origin={r.created_at} />
      </Card>
      {canRerun && FINAL.has(r.status) && graphSteps.length > 0 && (
        <Card title="Re-run from a step">
          <p className="muted small">A new run reuses the outputs of the steps before the one you choose and runs the rest again.</p>
          <div className="row">
            <Field label="From step">
              <select value={fromStep} onChange={(e) => setFromStep(e.target.value)}>
                <option value="">Choose a step…</option>
                {graphSteps.map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.id} ({s.type}, {status.get(s.id) ?? "not run"})
                  </option>
                ))}
              </select>
            </Field>
            <Button variant="primary" disabled={!fromStep} busy={rerun.isPending} onClick={() => rerun.mutate(fromStep)}>
              Re-run
            </Button>
          </div>
        </Card>
      )}
      <div className="grid-2">
        <Card title="Input">
          <Json value={r.input} label="Run input" />
        </Card>
        <Card title={r.error ? "Error" : "Output"}>
          <Json value={r.error ?? r.output} label="Run output" />
        </Card>
      </div>
    </div>
  );
}

export default function PipelineRunPage() {
  return (
    <Suspense fallback={<Loading />}>
      <PipelineRunDetail />
    </Suspense>
  );
}
