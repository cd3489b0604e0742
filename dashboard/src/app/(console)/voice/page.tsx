"use client";
import { useInfiniteQuery } from "@tanstack/react-query";
import Link from "next/link";
import { Suspense } from "react";

import { api, call } from "@/api/client";
import { agentNames, useAgents } from "@/api/queries";
import type { VoiceSessionStatus } from "@/api/types";
import { StartVoiceSessionDialog } from "@/components/StartVoiceSessionDialog";
import { StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox, Loading } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { durationMs, formatDuration } from "@/lib/format";
import { useUrlState } from "@/lib/url";

const STATUSES: VoiceSessionStatus[] = ["active", "ended", "failed"];

function VoiceSessions() {
  const [params, setParams] = useUrlState();
  const filters = {
    status: (params.get("status") as VoiceSessionStatus | null) ?? undefined,
    agent_id: params.get("agent") ?? undefined,
  };
  const agents = useAgents();
  const names = agentNames(agents.data?.items);
  const canStart = useCan("voice:write");
  const sessions = useInfiniteQuery({
    queryKey: ["voice-sessions", filters],
    queryFn: ({ pageParam }) =>
      call(api.GET("/v1/voice/sessions", { params: { query: { ...filters, limit: 50, cursor: pageParam ?? undefined } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    refetchInterval: (query) => ((query.state.data?.pages.length ?? 0) <= 1 ? 10_000 : false),
  });
  const items = sessions.data?.pages.flatMap((p) => p.items) ?? [];
  const filtered = Boolean(filters.status || filters.agent_id);
  return (
    <>
      <PageHeader
        title="Voice sessions"
        description="Spoken conversations with your agents: each turn is speech to text, an agent turn and text to speech."
        actions={canStart && <StartVoiceSessionDialog />}
      />
      <form className="row card" role="search" aria-label="Filter voice sessions" style={{ marginBottom: 16 }} onSubmit={(e) => e.preventDefault()}>
        <Field label="Status">
          <select value={filters.status ?? ""} onChange={(e) => setParams({ status: e.target.value })}>
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
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
        {filtered && <Button onClick={() => setParams({ status: null, agent: null })}>Clear</Button>}
      </form>
      {sessions.error && <ErrorBox error={sessions.error} />}
      {sessions.isPending ? (
        <Loading label="Loading voice sessions…" />
      ) : items.length === 0 ? (
        <Empty>{filtered ? "No voice session matches these filters." : "No voice sessions yet."}</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Voice sessions">
          <table>
            <caption className="sr-only">Voice sessions</caption>
            <thead>
              <tr>
                <th scope="col" className="shrink">
                  Status
                </th>
                <th scope="col" className="shrink">
                  Session
                </th>
                <th scope="col">Agent</th>
                <th scope="col" className="num">
                  Turns
                </th>
                <th scope="col" className="hide-sm">
                  Subject
                </th>
                <th scope="col" className="num hide-sm">
                  Duration
                </th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {items.map((s) => (
                <tr key={s.id}>
                  <td>
                    <StatusBadge status={s.status} />
                  </td>
                  <td>
                    <Link className="row-link mono" href={`/voice/session?id=${s.id}`} title={s.id}>
                      {s.id.slice(0, 12)}…
                    </Link>
                  </td>
                  <td className="nowrap">
                    {names.get(s.agent_id) ?? <span className="mono">{s.agent_id}</span>} <span className="muted">v{s.agent_version}</span>
                  </td>
                  <td className="num">{s.turn_count}</td>
                  <td className="hide-sm">{s.subject ?? <span className="muted">—</span>}</td>
                  <td className="num hide-sm">
                    {formatDuration(durationMs(s.created_at, s.ended_at))}
                    {s.end_reason && <div className="muted small">{s.end_reason.replace(/_/g, " ")}</div>}
                  </td>
                  <td>
                    <Time iso={s.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {sessions.hasNextPage && (
        <div className="actions" style={{ marginTop: 12 }}>
          <Button onClick={() => void sessions.fetchNextPage()} busy={sessions.isFetchingNextPage}>
            Load more
          </Button>
        </div>
      )}
    </>
  );
}

export default function VoicePage() {
  return (
    <Suspense fallback={<Loading />}>
      <VoiceSessions />
    </Suspense>
  );
}
