"use client";
/** One recommendation: what it targets, its evidence, the gain it expects, the change apply makes, its outcome. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useState, type FormEvent } from "react";

import { api, call } from "@/api/client";
import type { Recommendation } from "@/api/types";
import { Badge, StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { Dialog } from "@/components/ui/Dialog";
import { ErrorBox, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Time } from "@/components/ui/Misc";
import { useMe } from "@/lib/auth";
import { formatNumber } from "@/lib/format";

type Estimate = { value: number; ci?: [number, number]; n?: number };
type Metric = Estimate & { name?: string; unit?: string };

const num = (value: number) => formatNumber(Math.round(value * 1000) / 1000);

/** "0.4 (95% CI 0.35–0.46, n = 300)". */
function estimate(e: Estimate | null | undefined): string {
  if (!e || typeof e.value !== "number") return "—";
  const ci = e.ci ? ` (95% CI ${num(e.ci[0])}–${num(e.ci[1])}${e.n !== undefined ? `, n = ${formatNumber(e.n)}` : ""})` : "";
  return `${num(e.value)}${ci}`;
}

function Target({ target, agents }: { target: Recommendation["target"]; agents: Map<string, string> }) {
  const detail = ["tool", "model", "field", "step_id", "need"].flatMap((k) => (typeof target[k] === "string" ? [`${k.replace("_id", "")} ${target[k]}`] : []));
  const link =
    target.type === "agent" ? (
      <Link href={`/agents/detail?id=${String(target.agent_id)}`}>{agents.get(String(target.agent_id)) ?? String(target.agent_id)}</Link>
    ) : target.type === "pipeline" ? (
      <Link href={`/pipelines/detail?id=${String(target.pipeline_id)}`}>pipeline {String(target.pipeline_id)}</Link>
    ) : (
      <span className="mono">{JSON.stringify(target)}</span>
    );
  return (
    <>
      {link}
      {detail.length > 0 && <span className="muted"> · {detail.join(" · ")}</span>}
    </>
  );
}

function Evidence({ evidence }: { evidence: Recommendation["evidence"] }) {
  const metric = evidence.metric as Metric | undefined;
  const window = evidence.window as { runs?: number } | undefined;
  const examples = (evidence.example_run_ids as string[] | undefined) ?? [];
  return (
    <>
      {metric ? (
        <>
          {metric.name ? `${metric.name.replace(/_/g, " ")}: ` : ""}
          {estimate(metric)} {metric.unit}
        </>
      ) : (
        <span className="muted">—</span>
      )}
      {window?.runs !== undefined && <span className="muted"> · over {formatNumber(window.runs)} runs</span>}
      {examples.length > 0 && (
        <div className="small">
          e.g.{" "}
          {examples.slice(0, 3).map((id, i) => (
            <span key={id}>
              {i > 0 && ", "}
              <Link className="mono" href={`/runs/detail?id=${id}`}>
                {id.slice(0, 12)}…
              </Link>
            </span>
          ))}
        </div>
      )}
    </>
  );
}

function Outcome({ rec }: { rec: Recommendation }) {
  const outcome = rec.outcome as
    | { status?: string; runs?: number; needed?: number; before?: Estimate | null; after?: Estimate | null; measured_gain?: { quantity: number; unit: string } }
    | null;
  if (!outcome) return <span className="muted">{rec.status === "applied" ? "not measured yet" : "—"}</span>;
  return (
    <>
      {outcome.status && <StatusBadge status={outcome.status} />}{" "}
      {outcome.runs !== undefined && (
        <span className="muted small">
          {formatNumber(outcome.runs)}
          {outcome.needed !== undefined && ` of ${formatNumber(outcome.needed)}`} runs of the change
        </span>
      )}
      {(outcome.before || outcome.after) && (
        <div className="small">
          before {estimate(outcome.before)} → after {estimate(outcome.after)}
        </div>
      )}
      {outcome.measured_gain && (
        <div className="small">
          measured gain: <strong>{num(outcome.measured_gain.quantity)}</strong> {outcome.measured_gain.unit}
        </div>
      )}
    </>
  );
}

/** What apply made: the new version or the optimizer run, linked. */
function Result({ rec }: { rec: Recommendation }) {
  const result = rec.result as { agent_version?: number; pipeline_version?: number; optimizer_run_id?: string } | null;
  if (!result) return null;
  if (result.optimizer_run_id) return <Link href={`/optimizer/run?id=${result.optimizer_run_id}`}>optimizer run {result.optimizer_run_id}</Link>;
  if (result.agent_version !== undefined) return <>made agent version v{result.agent_version}</>;
  if (result.pipeline_version !== undefined) return <>made pipeline version v{result.pipeline_version}</>;
  return null;
}

function Decide({ rec }: { rec: Recommendation }) {
  const me = useMe();
  const queries = useQueryClient();
  const notify = useToast();
  const [dismissing, setDismissing] = useState(false);
  const [reason, setReason] = useState("");
  const path = { params: { path: { recommendation_id: rec.id } } };
  const done = (text: string) => {
    notify(text);
    void queries.invalidateQueries({ queryKey: ["recommendations"] });
  };
  const apply = useMutation({
    mutationFn: () => call(api.POST("/v1/recommendations/{recommendation_id}/apply", path)),
    onSuccess: () => done(`Applied: ${rec.title}`),
    onError: () => void queries.invalidateQueries({ queryKey: ["recommendations"] }), // a 409 may have made it stale
  });
  const dismiss = useMutation({
    mutationFn: () => call(api.POST("/v1/recommendations/{recommendation_id}/dismiss", { ...path, body: { reason: reason.trim() || null } })),
    onSuccess: () => {
      setDismissing(false);
      done(`Dismissed: ${rec.title}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    dismiss.mutate();
  };
  const requires = typeof rec.action.requires === "string" ? rec.action.requires : null;
  const mayApply = !requires || me.permissions.includes(requires);
  const open = rec.status === "open";
  if (!open && rec.status !== "stale") return null;
  return (
    <>
      <div className="actions">
        {open && mayApply && (
          <Button variant="primary" size="sm" busy={apply.isPending} onClick={() => apply.mutate()}>
            Apply
          </Button>
        )}
        <Button size="sm" onClick={() => setDismissing(true)}>
          Dismiss
        </Button>
        {open && !mayApply && <span className="muted small">Applying needs the permission {requires}.</span>}
      </div>
      <ErrorBox error={apply.error} />
      <Dialog open={dismissing} onClose={() => setDismissing(false)} title="Dismiss the recommendation">
        <form className="stack" onSubmit={submit}>
          <p>{rec.title}</p>
          <Field label="Reason (optional)" hint="Kept with it and in the audit log; it is not suggested again unless its evidence changes.">
            <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={2000} />
          </Field>
          <ErrorBox error={dismiss.error} />
          <div className="actions">
            <Button type="submit" variant="danger" busy={dismiss.isPending}>
              Dismiss
            </Button>
            <Button onClick={() => setDismissing(false)}>Cancel</Button>
          </div>
        </form>
      </Dialog>
    </>
  );
}

export function RecommendationCard({ rec, agents, canWrite }: { rec: Recommendation; agents: Map<string, string>; canWrite: boolean }) {
  const summary = typeof rec.action.summary === "string" ? rec.action.summary : String(rec.action.type ?? "");
  return (
    <li className="card stack" style={{ gap: 10 }} aria-labelledby={`rec-${rec.id}`}>
      <div className="row" style={{ alignItems: "center", gap: 8 }}>
        <StatusBadge status={rec.status} />
        <Badge tone="info">{rec.kind.replace(/_/g, " ")}</Badge>
        <h2 id={`rec-${rec.id}`} style={{ margin: 0, flex: 1, minWidth: 200 }}>
          {rec.title}
        </h2>
        <span className="muted small">
          found <Time iso={rec.created_at} />
        </span>
      </div>
      <dl className="kv small">
        <dt>Target</dt>
        <dd>
          <Target target={rec.target} agents={agents} />
        </dd>
        <dt>Evidence</dt>
        <dd>
          <Evidence evidence={rec.evidence} />
        </dd>
        <dt>Expected gain</dt>
        <dd>
          <strong>{num(rec.expected_gain.quantity)}</strong> {rec.expected_gain.unit}
          {rec.expected_gain.assumption && <div className="muted">{rec.expected_gain.assumption}</div>}
        </dd>
        <dt>Action</dt>
        <dd>
          {summary}
          {rec.status === "applied" && (
            <span className="muted">
              {" · "}
              <Result rec={rec} />
            </span>
          )}
        </dd>
        {rec.status_reason && (
          <>
            <dt>{rec.status === "stale" ? "Stale because" : "Reason"}</dt>
            <dd>{rec.status_reason}</dd>
          </>
        )}
        <dt>Outcome</dt>
        <dd>
          <Outcome rec={rec} />
        </dd>
      </dl>
      {canWrite && <Decide rec={rec} />}
    </li>
  );
}
