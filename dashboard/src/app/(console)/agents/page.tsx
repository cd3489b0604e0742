"use client";
import { useInfiniteQuery } from "@tanstack/react-query";
import Link from "next/link";

import { api, call } from "@/api/client";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox, Loading } from "@/components/ui/Feedback";
import { PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";

export default function AgentsPage() {
  const canWrite = useCan("agents:write");
  const agents = useInfiniteQuery({
    queryKey: ["agents", "pages"],
    queryFn: ({ pageParam }) => call(api.GET("/v1/agents", { params: { query: { limit: 50, cursor: pageParam ?? undefined } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const items = agents.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <>
      <PageHeader
        title="Agents"
        description="Each change of an agent is a new immutable version; runs keep the version they started with."
        actions={
          canWrite && (
            <Link className="btn btn-primary" href="/agents/new">
              New agent
            </Link>
          )
        }
      />
      <ErrorBox error={agents.error} />
      {agents.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>No agents yet.</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Agents">
          <table>
            <caption className="sr-only">Agents</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Version</th>
                <th scope="col">Model</th>
                <th scope="col" className="hide-sm">
                  Tools
                </th>
                <th scope="col" className="hide-sm">
                  Memory
                </th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {items.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Link className="row-link" href={`/agents/detail?id=${a.id}`}>
                      {a.name}
                    </Link>
                    <div className="muted small mono">{a.id}</div>
                  </td>
                  <td>v{a.version}</td>
                  <td className="mono small">
                    {a.model.provider}:{a.model.name}
                  </td>
                  <td className="hide-sm small">{a.tools.map((t) => (typeof t === "string" ? t : t.name)).join(", ") || "—"}</td>
                  <td className="hide-sm">{a.memory.enabled ? "on" : "off"}</td>
                  <td>
                    <Time iso={a.updated_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {agents.hasNextPage && (
        <Button onClick={() => void agents.fetchNextPage()} busy={agents.isFetchingNextPage}>
          Load more
        </Button>
      )}
    </>
  );
}
