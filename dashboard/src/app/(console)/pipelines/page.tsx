"use client";
import { useInfiniteQuery } from "@tanstack/react-query";
import Link from "next/link";

import { api, call } from "@/api/client";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox, Loading } from "@/components/ui/Feedback";
import { PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { stepsOf } from "@/lib/graph";

export default function PipelinesPage() {
  const canWrite = useCan("pipelines:write");
  const pipelines = useInfiniteQuery({
    queryKey: ["pipelines", "pages"],
    queryFn: ({ pageParam }) => call(api.GET("/v1/pipelines", { params: { query: { limit: 50, cursor: pageParam ?? undefined } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const items = pipelines.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <>
      <PageHeader
        title="Pipelines"
        description="Tenant-defined workflows: agent runs, tools, approvals, timers and fan-outs as a graph of steps."
        actions={
          canWrite && (
            <Link className="btn btn-primary" href="/pipelines/new">
              New pipeline
            </Link>
          )
        }
      />
      <ErrorBox error={pipelines.error} />
      {pipelines.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>No pipelines yet.</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Pipelines">
          <table>
            <caption className="sr-only">Pipelines</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Version</th>
                <th scope="col" className="num">
                  Steps
                </th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {items.map((p) => (
                <tr key={p.id}>
                  <td>
                    <Link className="row-link" href={`/pipelines/detail?id=${p.id}`}>
                      {p.name}
                    </Link>
                    <div className="muted small mono">{p.id}</div>
                  </td>
                  <td>v{p.version}</td>
                  <td className="num">{stepsOf(p.definition).length}</td>
                  <td>
                    <Time iso={p.updated_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {pipelines.hasNextPage && (
        <Button onClick={() => void pipelines.fetchNextPage()} busy={pipelines.isFetchingNextPage}>
          Load more
        </Button>
      )}
    </>
  );
}
