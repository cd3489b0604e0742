"use client";
import { useInfiniteQuery } from "@tanstack/react-query";
import { Suspense, useState, type FormEvent } from "react";

import { api, call } from "@/api/client";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox, Loading } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Time } from "@/components/ui/Misc";
import { useUrlState } from "@/lib/url";

function Audit() {
  const [params, setParams] = useUrlState();
  const action = params.get("action") ?? "";
  const [text, setText] = useState(action);
  const events = useInfiniteQuery({
    queryKey: ["audit", action],
    queryFn: ({ pageParam }) => call(api.GET("/v1/audit-events", { params: { query: { action: action || undefined, limit: 50, cursor: pageParam ?? undefined } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const items = events.data?.pages.flatMap((p) => p.items) ?? [];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setParams({ action: text.trim() || null });
  };
  return (
    <div className="stack">
      <form className="row" onSubmit={submit} role="search" aria-label="Filter the audit log">
        <Field label="Action" hint="e.g. agent.version_promoted, api_key.created">
          <input value={text} onChange={(e) => setText(e.target.value)} />
        </Field>
        <Button type="submit">Filter</Button>
      </form>
      <ErrorBox error={events.error} />
      {events.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>No audit events.</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Audit events">
          <table>
            <caption className="sr-only">Audit events</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Target</th>
                <th scope="col" className="hide-sm">
                  Data
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id}>
                  <td>
                    <Time iso={e.created_at} />
                  </td>
                  <td className="mono small">{e.action}</td>
                  <td className="small">
                    {e.actor_kind} <span className="mono muted">{e.actor_id}</span>
                  </td>
                  <td className="small">
                    {e.target_type} <span className="mono muted">{e.target_id}</span>
                  </td>
                  <td className="hide-sm mono small clip" title={JSON.stringify(e.data)}>
                    {JSON.stringify(e.data)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {events.hasNextPage && (
        <Button onClick={() => void events.fetchNextPage()} busy={events.isFetchingNextPage}>
          Load more
        </Button>
      )}
    </div>
  );
}

export default function AuditPage() {
  return (
    <Suspense fallback={<Loading />}>
      <Audit />
    </Suspense>
  );
}
