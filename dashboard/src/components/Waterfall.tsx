"use client";
import { useState, type ReactNode } from "react";

import { StatusBadge } from "@/components/ui/Badge";
import { Json } from "@/components/ui/Misc";
import { durationMs, formatDuration, formatNumber, formatUsd } from "@/lib/format";

/** What a waterfall row needs of a step (agent run steps and pipeline steps alike). */
export type WaterfallStep = {
  id: string;
  label: string;
  kind: string;
  status: string;
  started_at: string | null;
  ended_at: string | null;
  attempts: number;
  usage?: { input_tokens: number; output_tokens: number; cost_usd: number } | null;
  input?: unknown;
  output?: unknown;
  error?: unknown;
  note?: string;
};

type Props = {
  steps: WaterfallStep[];
  /** The run's start (the timeline's origin when it precedes the first step). */
  origin?: string;
  /** Extra controls under a step's details (approve, re-run from here…). */
  actions?: (step: WaterfallStep) => ReactNode;
  now?: number;
};

function barClass(status: string): string {
  if (status === "failed" || status === "rejected") return "failed";
  if (status === "waiting" || status === "waiting_approval") return "waiting";
  if (status === "running") return "running";
  return "";
}

/** Each step as a bar on the run's timeline; a row opens the step's input, output and error. */
export function Waterfall({ steps, origin, actions, now = Date.now() }: Props) {
  const [open, setOpen] = useState<string | null>(null);
  const starts = steps.flatMap((s) => (s.started_at ? [new Date(s.started_at).getTime()] : []));
  if (origin) starts.push(new Date(origin).getTime());
  const t0 = starts.length ? Math.min(...starts) : now;
  const ends = steps.map((s) => (s.ended_at ? new Date(s.ended_at).getTime() : s.started_at ? now : t0));
  const t1 = Math.max(t0 + 1, ...ends);
  const span = t1 - t0;
  return (
    <div className="waterfall">
      <div className="wf-row muted small" aria-hidden="true" style={{ cursor: "default" }}>
        <span>Step</span>
        <span className="hide-sm">0 — {formatDuration(span)}</span>
        <span style={{ textAlign: "right" }}>Duration</span>
      </div>
      <ul aria-label="Steps">
      {steps.map((step) => {
        const start = step.started_at ? new Date(step.started_at).getTime() : null;
        const end = step.ended_at ? new Date(step.ended_at).getTime() : now;
        const left = start === null ? 0 : ((start - t0) / span) * 100;
        const width = start === null ? 0 : Math.max(((end - start) / span) * 100, 0.4);
        const expanded = open === step.id;
        const duration = durationMs(step.started_at, step.ended_at, now);
        return (
          <li key={step.id}>
            <button
              type="button"
              className="wf-row"
              aria-expanded={expanded}
              aria-controls={`step-${step.id}`}
              onClick={() => setOpen(expanded ? null : step.id)}
            >
              <span className="wf-name">
                <span className="badge">{step.kind}</span>
                <span className="name" title={step.label}>
                  {step.label}
                </span>
                <StatusBadge status={step.status} />
                {step.attempts > 1 && <span className="badge badge-warn">{step.attempts} attempts</span>}
              </span>
              <span className="wf-track" aria-hidden="true">
                {start !== null && <span className={`wf-bar ${barClass(step.status)}`} style={{ left: `${left}%`, width: `${width}%` }} />}
              </span>
              <span className="mono small" style={{ textAlign: "right" }}>
                {formatDuration(duration)}
              </span>
            </button>
            {expanded && (
              <div className="wf-detail" id={`step-${step.id}`}>
                <dl className="kv small">
                  <dt>Step</dt>
                  <dd className="mono">{step.id}</dd>
                  <dt>Attempts</dt>
                  <dd>{step.attempts}</dd>
                  {step.usage && (
                    <>
                      <dt>Tokens</dt>
                      <dd>
                        {formatNumber(step.usage.input_tokens)} in · {formatNumber(step.usage.output_tokens)} out
                      </dd>
                      <dt>Cost</dt>
                      <dd>{formatUsd(step.usage.cost_usd)}</dd>
                    </>
                  )}
                  {step.note && (
                    <>
                      <dt>Note</dt>
                      <dd>{step.note}</dd>
                    </>
                  )}
                </dl>
                {step.input !== undefined && (
                  <div>
                    <h3>Input</h3>
                    <Json value={step.input} label={`Input of step ${step.id}`} />
                  </div>
                )}
                <div>
                  <h3>Output</h3>
                  <Json value={step.output} label={`Output of step ${step.id}`} />
                </div>
                {step.error !== null && step.error !== undefined && (
                  <div>
                    <h3>Error</h3>
                    <Json value={step.error} label={`Error of step ${step.id}`} />
                  </div>
                )}
              </div>
            )}
            {actions?.(step)}
          </li>
        );
      })}
      </ul>
    </div>
  );
}
