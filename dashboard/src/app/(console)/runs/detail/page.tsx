"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { Suspense, useState, type FormEvent } from "react";

import { api, call } from "@/api/client";
import { agentNames, useAgents } from "@/api/queries";
import type { Run, Step } from "@/api/types";
import { ApprovalControl } from "@/components/ApprovalControl";
import { FeedbackPanel } from "@/components/FeedbackPanel";
import { LiveBadge } from "@/components/LiveBadge";
import { StartRunDialog } from "@/components/StartRunDialog";
import { StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, Json, PageHeader, Time } from "@/components/ui/Misc";
import { Waterfall, type WaterfallStep } from "@/components/Waterfall";
import { useCan } from "@/lib/auth";
import { durationMs, formatDuration, formatNumber, formatUsd } from "@/lib/format";
import { useLiveEvents } from "@/lib/live";
import { useIdParam } from "@/lib/url";

const IN_PROGRESS = new Set(["queued", "running", "waiting_approval"]);
const OUTCOME = new Set(["completed", "failed", "cancelled"]);

function toWaterfall(step: Step): WaterfallStep {
  return { ...step, label: step.name, usage: step.usage ?? null };
}

/** "calculator({"expression":"6 * 7"})": the call an approval step holds. */
function approvalPrompt(step: WaterfallStep): string {
  const args = (step.input as { arguments?: unknown } | null)?.arguments;
  return `call ${step.label}(${args === undefined ? "" : JSON.stringify(args)})`;
}

function Conversation({ run, closed }: { run: Run; closed: boolean }) {
  const canSend = useCan("runs:start");
  const queries = useQueryClient();
  const [text, setText] = useState("");
  const messages = useQuery({
    queryKey: ["thread", run.thread_id],
    queryFn: () => call(api.GET("/v1/threads/{thread_id}/messages", { params: { path: { thread_id: run.thread_id }, query: { limit: 200 } } })),
  });
  const send = useMutation({
    mutationFn: () => call(api.POST("/v1/runs/{run_id}/messages", { params: { path: { run_id: run.id } }, body: { input: text } })),
    onSuccess: () => {
      setText("");
      void queries.invalidateQueries({ queryKey: ["run", run.id] });
      void queries.invalidateQueries({ queryKey: ["thread", run.thread_id] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    send.mutate();
  };
  const shown = (messages.data?.items ?? []).filter((m) => (m.role === "user" || m.role === "assistant") && m.content);
  return (
    <Card title="Conversation">
      <div className="chat" aria-live="polite">
        {shown.map((m) => (
          <div key={m.seq} className={`msg ${m.role}`}>
            <span className="who">{m.role}</span>
            {m.content}
          </div>
        ))}
        {shown.length === 0 && <p className="muted">No messages yet.</p>}
      </div>
      {canSend && run.status === "completed" && !closed && (
        <form className="row" onSubmit={submit} style={{ marginTop: 12 }} aria-label="Send the next message">
          <Field label="Next message" className="grow">
            <input value={text} required onChange={(e) => setText(e.target.value)} placeholder="and times 3?" style={{ minWidth: 260 }} />
          </Field>
          <Button type="submit" variant="primary" busy={send.isPending}>
            Send
          </Button>
        </form>
      )}
      {closed && canSend && (
        <div className="row muted small" style={{ marginTop: 12, alignItems: "center" }}>
          This conversation is closed. <StartRunDialog agentId={run.agent_id} threadId={run.thread_id} label="Continue on this thread" />
        </div>
      )}
      <ErrorBox error={send.error} />
    </Card>
  );
}

function RunDetail() {
  const id = useIdParam();
  const queries = useQueryClient();
  const notify = useToast();
  const canApprove = useCan("runs:approve");
  const canCancel = useCan("runs:cancel");
  const canRetry = useCan("runs:start");
  const names = agentNames(useAgents().data?.items);
  const run = useQuery({
    queryKey: ["run", id],
    queryFn: () => call(api.GET("/v1/runs/{run_id}", { params: { path: { run_id: id } } })),
    enabled: Boolean(id),
    // a safety net under the event stream (a proxy that buffers it would otherwise freeze the page)
    refetchInterval: (q) => (q.state.data && IN_PROGRESS.has(q.state.data.status) ? 5_000 : false),
  });
  const live = useLiveEvents(id ? `/v1/runs/${encodeURIComponent(id)}/events` : null, [["run", id], ["feedback", id], ["thread"]], (e) => e.type === "run.closed");
  const refresh = () => void queries.invalidateQueries({ queryKey: ["run", id] });
  const cancel = useMutation({
    mutationFn: () => call(api.POST("/v1/runs/{run_id}/cancel", { params: { path: { run_id: id } } })),
    onSuccess: () => {
      notify("Cancel requested");
      refresh();
    },
  });
  const retry = useMutation({
    mutationFn: () => call(api.POST("/v1/runs/{run_id}/retry", { params: { path: { run_id: id } } })),
    onSuccess: () => {
      notify("Retrying from the failed step");
      refresh();
    },
  });
  const decide = async (stepId: string, decision: "approve" | "reject", comment: string) => {
    await call(
      api.POST("/v1/runs/{run_id}/approvals/{step_id}", {
        params: { path: { run_id: id, step_id: stepId } },
        body: { decision, comment: comment || null },
      }),
    );
    notify(decision === "approve" ? `Step ${stepId} approved` : `Step ${stepId} rejected`);
    refresh();
  };

  if (!id) return <ErrorBox error="No run id in the address (…/runs/detail?id=run_…)." />;
  if (run.isPending) return <Loading label="Loading the run…" />;
  if (run.error) return <ErrorBox error={run.error} />;
  const r = run.data;
  const attempts = r.steps.reduce((sum, s) => sum + s.attempts, 0);
  return (
    <div className="stack">
      <PageHeader
        crumbs={[{ href: "/runs", label: "Runs" }]}
        title={
          <span className="row" style={{ alignItems: "center" }}>
            <span className="mono">{r.id}</span> <StatusBadge status={r.status} /> <LiveBadge state={live.state} />
          </span>
        }
        description={
          <>
            <Link href={`/agents/detail?id=${r.agent_id}`}>{names.get(r.agent_id) ?? r.agent_id}</Link> v{r.agent_version} · thread{" "}
            <span className="mono">{r.thread_id}</span> · started <Time iso={r.created_at} />
            {r.experiment_id && (
              <>
                {" "}
                · experiment <Link href={`/optimizer/experiment?id=${r.experiment_id}`}>{r.experiment_arm}</Link>
              </>
            )}
          </>
        }
        actions={
          <>
            <a className="btn" href={r.temporal.ui_url} target="_blank" rel="noreferrer">
              Open in Temporal UI ↗
            </a>
            {canRetry && r.status === "failed" && (
              <Button variant="primary" busy={retry.isPending} onClick={() => retry.mutate()}>
                Retry from the failed step
              </Button>
            )}
            {canCancel && IN_PROGRESS.has(r.status) && (
              <Button variant="danger" busy={cancel.isPending} onClick={() => cancel.mutate()}>
                Cancel run
              </Button>
            )}
          </>
        }
      />
      <ErrorBox error={cancel.error ?? retry.error} />
      <div className="card row" style={{ gap: 28 }}>
        <div className="stat">
          <span className="value">{formatDuration(durationMs(r.created_at, IN_PROGRESS.has(r.status) ? null : r.updated_at))}</span>
          <span className="label">duration</span>
        </div>
        <div className="stat">
          <span className="value">{r.steps.length}</span>
          <span className="label">steps ({attempts} attempts)</span>
        </div>
        <div className="stat">
          <span className="value">{formatNumber(r.usage.input_tokens)}</span>
          <span className="label">input tokens</span>
        </div>
        <div className="stat">
          <span className="value">{formatNumber(r.usage.output_tokens)}</span>
          <span className="label">output tokens</span>
        </div>
        <div className="stat">
          <span className="value">{formatUsd(r.usage.cost_usd)}</span>
          <span className="label">cost</span>
        </div>
      </div>
      <Card title="Steps">
        {r.steps.length === 0 ? (
          <p className="muted">No steps yet.</p>
        ) : (
          <Waterfall
            steps={r.steps.map(toWaterfall)}
            origin={r.created_at}
            actions={(step) =>
              canApprove && step.kind === "approval" && step.status === "waiting" ? (
                <ApprovalControl stepId={step.id} prompt={approvalPrompt(step)} onDecide={(d, c) => decide(step.id, d, c)} />
              ) : null
            }
          />
        )}
      </Card>
      <div className="grid-2">
        <Card title="Input">
          <Json value={r.input} label="Run input" />
        </Card>
        <Card title={r.error ? "Error" : "Output"}>
          <Json value={r.error ?? r.output} label={r.error ? "Run error" : "Run output"} />
        </Card>
      </div>
      <div className="grid-2">
        <Conversation run={r} closed={live.state === "ended"} />
        <FeedbackPanel runId={r.id} finished={OUTCOME.has(r.status)} />
      </div>
      <details className="card">
        <summary>Events ({live.events.length})</summary>
        <ol className="mono small" style={{ maxHeight: 300, overflow: "auto" }}>
          {live.events.map((e, i) => (
            <li key={e.id || `${e.type}-${i}`}>
              {e.type} {JSON.stringify(e.data).slice(0, 200)}
            </li>
          ))}
        </ol>
      </details>
    </div>
  );
}

export default function RunPage() {
  return (
    <Suspense fallback={<Loading />}>
      <RunDetail />
    </Suspense>
  );
}
