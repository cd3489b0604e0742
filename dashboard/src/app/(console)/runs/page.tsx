"use client";
import { useInfiniteQuery } from "@tanstack/react-query";
import Link from "next/link";
import { Suspense, useEffect, useState, type FormEvent } from "react";

import { api, call } from "@/api/client";
import { agentNames, useAgents } from "@/api/queries";
import type { RunStatus } from "@/api/types";
import { StartRunDialog } from "@/components/StartRunDialog";
import { StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox, Loading } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { toInstant, toLocalInput } from "@/lib/dates";
import { durationMs, formatDuration, formatNumber, formatUsd } from "@/lib/format";
import { useUrlState } from "@/lib/url";

const STATUSES: RunStatus[] = ["queued", "running", "waiting_approval", "completed", "failed", "cancelled"];

function RunsList() {
  const [params, setParams] = useUrlState();
  const filters = {
    status: (params.get("status") as RunStatus | null) ?? undefined,
    agent_id: params.get("agent") ?? undefined,
    from: params.get("from") ?? undefined,
    to: params.get("to") ?? undefined,
    q: params.get("q") ?? undefined,
  };
  const [text, setText] = useState(filters.q ?? "");
  useEffect(() => setText(filters.q ?? ""), [filters.q]);
  const agents = useAgents();
  const names = agentNames(agents.data?.items);
  const canStart = useCan("runs:start");
  const runs = useInfiniteQuery({
    queryKey: ["runs", filters],
    queryFn: ({ pageParam }) =>
      call(api.GET("/v1/runs", { params: { query: { ...filters, limit: 50, cursor: pageParam ?? undefined } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    refetchInterval: (query) => ((query.state.data?.pages.length ?? 0) <= 1 ? 5_000 : false),
  });
  const items = runs.data?.pages.flatMap((p) => p.items) ?? [];
  const search = (e: FormEvent) => {
    e.preventDefault();
    setParams({ q: text.trim() || null });
  };
  const filtered = Object.values(filters).some(Boolean);

  return (
    <>
      <PageHeader title="Runs" description="Every agent run of your tenant, newest first." actions={canStart && <StartRunDialog />} />
      <form className="filters card" onSubmit={search} role="search" aria-label="Filter runs" style={{ marginBottom: 16 }}>
        <Field label="Search inputs and outputs">
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="refund, 42, …" />
        </Field>
        <Field label="Status">
          <select value={filters.status ?? ""} onChange={(e) => setParams({ status: e.target.value })}>
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace("_", " ")}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Agent">
          <select value={filters.agent_id ?? ""} onChange={(e) => setParams({ agent: e.target.value })}>
            <option value="">Any agent</option>
            {(agents.data?.items ?? []).map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Created from">
          <input type="datetime-local" value={toLocalInput(filters.from ?? null)} onChange={(e) => setParams({ from: toInstant(e.target.value) })} />
        </Field>
        <Field label="Created before">
          <input type="datetime-local" value={toLocalInput(filters.to ?? null)} onChange={(e) => setParams({ to: toInstant(e.target.value) })} />
        </Field>
        <div className="actions">
          <Button type="submit" variant="primary">
            Search
          </Button>
          {filtered && <Button onClick={() => setParams({ status: null, agent: null, from: null, to: null, q: null })}>Clear</Button>}
        </div>
      </form>
      {runs.error && <ErrorBox error={runs.error} />}
      {runs.isPending ? (
        <Loading label="Loading runs…" />
      ) : items.length === 0 ? (
        <Empty>{filtered ? "No run matches these filters." : "No runs yet."}</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Runs">
          <table data-testid="runs-table">
            <caption className="sr-only">Runs</caption>
            <thead>
              <tr>
                <th scope="col" className="shrink">
                  Status
                </th>
                <th scope="col" className="shrink">
                  Run
                </th>
                <th scope="col" className="shrink">
                  Agent
                </th>
                <th scope="col" className="hide-sm">
                  Input → output
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
              {items.map((run) => (
                <tr key={run.id}>
                  <td>
                    <StatusBadge status={run.status} />
                  </td>
                  <td>
                    <Link className="row-link mono" href={`/runs/detail?id=${run.id}`} title={run.id}>
                      {run.id.slice(0, 12)}…
                    </Link>
                  </td>
                  <td className="nowrap">
                    {names.get(run.agent_id) ?? <span className="mono">{run.agent_id}</span>} <span className="muted">v{run.agent_version}</span>
                  </td>
                  <td className="fluid hide-sm">
                    <div className="clip" title={run.input}>
                      {run.input}
                    </div>
                    <div className="clip muted small" title={run.output ?? ""}>
                      → {run.output ?? "—"}
                    </div>
                  </td>
                  <td className="num hide-sm">
                    {formatUsd(run.usage.cost_usd)}
                    <div className="muted small">{formatNumber(run.usage.input_tokens + run.usage.output_tokens)} tok</div>
                  </td>
                  <td className="num hide-sm">{formatDuration(durationMs(run.created_at, run.updated_at))}</td>
                  <td>
                    <Time iso={run.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {runs.hasNextPage && (
        <div className="actions" style={{ marginTop: 12 }}>
          <Button onClick={() => void runs.fetchNextPage()} busy={runs.isFetchingNextPage}>
            Load more
          </Button>
        </div>
      )}
    </>
  );
}

export default function RunsPage() {
  return (
    <Suspense fallback={<Loading />}>
      <RunsList />
    </Suspense>
  );
}
