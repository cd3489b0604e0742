"use client";
import { useQuery } from "@tanstack/react-query";
import { Suspense } from "react";

import { api, call } from "@/api/client";
import type { UsageReport } from "@/api/types";
import { BarsChart, type BarDatum } from "@/components/charts";
import { Empty, ErrorBox, Loading } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, PageHeader } from "@/components/ui/Misc";
import { daysAgo } from "@/lib/dates";
import { formatNumber, formatUsd } from "@/lib/format";
import { useUrlState } from "@/lib/url";

type Metric = "cost_usd" | "runs" | "tokens";

/** One row per day of the range, one column per agent. */
function perDay(report: UsageReport, metric: Metric, from: string, to: string): BarDatum[] {
  const rows = new Map<string, BarDatum>();
  for (let t = new Date(`${from}T00:00:00Z`).getTime(); t < new Date(`${to}T00:00:00Z`).getTime(); t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    rows.set(day, { label: day.slice(5) });
  }
  for (const d of report.days) {
    const row = rows.get(d.day) ?? { label: d.day.slice(5) };
    const value = metric === "tokens" ? d.input_tokens + d.output_tokens : d[metric];
    row[d.agent_id] = value;
    rows.set(d.day, row);
  }
  return [...rows.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, row]) => row);
}

function Usage() {
  const [params, setParams] = useUrlState();
  const from = params.get("from") ?? daysAgo(13);
  const to = params.get("to") ?? daysAgo(-1);
  const usage = useQuery({
    queryKey: ["usage", from, to],
    queryFn: () => call(api.GET("/v1/usage", { params: { query: { from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z` } } })),
  });
  const report = usage.data;
  const series = (report?.agents ?? []).map((a) => ({ key: a.agent_id, name: a.agent_name }));
  return (
    <div className="stack">
      <PageHeader title="Usage and cost" description="Tokens, cost and runs per agent and day (UTC) for your tenant." />
      <div className="row card">
        <Field label="From (UTC day)">
          <input type="date" value={from} onChange={(e) => setParams({ from: e.target.value })} />
        </Field>
        <Field label="Until (exclusive)">
          <input type="date" value={to} onChange={(e) => setParams({ to: e.target.value })} />
        </Field>
      </div>
      <ErrorBox error={usage.error} />
      {usage.isPending ? (
        <Loading />
      ) : report && report.runs === 0 ? (
        <Empty>No runs in this period.</Empty>
      ) : (
        report && (
          <>
            <div className="card row" style={{ gap: 28 }}>
              <div className="stat">
                <span className="value">{formatUsd(report.cost_usd)}</span>
                <span className="label">cost</span>
              </div>
              <div className="stat">
                <span className="value">{formatNumber(report.runs)}</span>
                <span className="label">runs</span>
              </div>
              <div className="stat">
                <span className="value">{formatNumber(report.input_tokens)}</span>
                <span className="label">input tokens</span>
              </div>
              <div className="stat">
                <span className="value">{formatNumber(report.output_tokens)}</span>
                <span className="label">output tokens</span>
              </div>
            </div>
            <div className="grid-2">
              <Card title="Cost per day">
                <BarsChart label="Cost per day and agent" data={perDay(report, "cost_usd", from, to)} series={series} stacked format={(v) => formatUsd(v)} />
              </Card>
              <Card title="Runs per day">
                <BarsChart label="Runs per day and agent" data={perDay(report, "runs", from, to)} series={series} stacked />
              </Card>
            </div>
            <Card title="Tokens per day">
              <BarsChart label="Tokens per day and agent" data={perDay(report, "tokens", from, to)} series={series} stacked format={(v) => formatNumber(v)} />
            </Card>
            <div className="table-wrap" tabIndex={0} role="region" aria-label="Usage per agent">
              <table>
                <caption className="sr-only">Usage per agent</caption>
                <thead>
                  <tr>
                    <th scope="col">Agent</th>
                    <th scope="col" className="num">
                      Runs
                    </th>
                    <th scope="col" className="num">
                      Input tokens
                    </th>
                    <th scope="col" className="num">
                      Output tokens
                    </th>
                    <th scope="col" className="num">
                      Cost
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {report.agents.map((a) => (
                    <tr key={a.agent_id}>
                      <td>{a.agent_name}</td>
                      <td className="num">{formatNumber(a.runs)}</td>
                      <td className="num">{formatNumber(a.input_tokens)}</td>
                      <td className="num">{formatNumber(a.output_tokens)}</td>
                      <td className="num">{formatUsd(a.cost_usd)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )
      )}
    </div>
  );
}

export default function UsagePage() {
  return (
    <Suspense fallback={<Loading />}>
      <Usage />
    </Suspense>
  );
}
