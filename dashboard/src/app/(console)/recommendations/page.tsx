"use client";
import { useInfiniteQuery, useMutation } from "@tanstack/react-query";
import { Suspense, useState } from "react";

import { api, call } from "@/api/client";
import { agentNames, useAgents } from "@/api/queries";
import type { RecommendationKind, RecommendationStatus } from "@/api/types";
import { RecommendationCard } from "@/components/RecommendationCard";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { PageHeader } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { useUrlState } from "@/lib/url";

const STATUSES: RecommendationStatus[] = ["open", "applied", "dismissed", "stale"];
const KINDS: RecommendationKind[] = ["prompt", "model", "retry_policy", "timeout", "tool", "pipeline"];
const WATCH_MS = 60_000;

function Recommendations() {
  const [params, setParams] = useUrlState();
  const filters = {
    status: (params.get("status") as RecommendationStatus | null) ?? undefined,
    kind: (params.get("kind") as RecommendationKind | null) ?? undefined,
  };
  const canWrite = useCan("recommendations:write");
  const names = agentNames(useAgents().data?.items);
  const notify = useToast();
  const [watchUntil, setWatchUntil] = useState(0);
  const list = useInfiniteQuery({
    queryKey: ["recommendations", filters],
    queryFn: ({ pageParam }) =>
      call(api.GET("/v1/recommendations", { params: { query: { ...filters, limit: 50, cursor: pageParam ?? undefined } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    // a mining pass takes seconds: follow it closely after a refresh, slowly otherwise
    refetchInterval: () => (Date.now() < watchUntil ? 2_000 : 30_000),
  });
  const refresh = useMutation({
    mutationFn: () => call(api.POST("/v1/recommendations/refresh")),
    onSuccess: (pass) => {
      notify(pass.reused ? "A mining pass is already running; following it" : "Mining pass started");
      setWatchUntil(Date.now() + WATCH_MS);
    },
  });
  const items = list.data?.pages.flatMap((p) => p.items) ?? [];
  const filtered = Boolean(filters.status || filters.kind);
  return (
    <>
      <PageHeader
        title="Recommendations"
        description="Changes mined from your runs and feedback, each with its evidence, the gain it expects and, once applied, the gain measured."
        actions={
          canWrite && (
            <Button variant="primary" busy={refresh.isPending} onClick={() => refresh.mutate()}>
              Refresh recommendations
            </Button>
          )
        }
      />
      <ErrorBox error={refresh.error} />
      <form className="row card" role="search" aria-label="Filter recommendations" style={{ marginBottom: 16 }} onSubmit={(e) => e.preventDefault()}>
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
        <Field label="Kind">
          <select value={filters.kind ?? ""} onChange={(e) => setParams({ kind: e.target.value })}>
            <option value="">Any kind</option>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k.replace("_", " ")}
              </option>
            ))}
          </select>
        </Field>
        {filtered && <Button onClick={() => setParams({ status: null, kind: null })}>Clear</Button>}
      </form>
      {list.error && <ErrorBox error={list.error} />}
      {list.isPending ? (
        <Loading label="Loading recommendations…" />
      ) : items.length === 0 ? (
        <Empty>{filtered ? "No recommendation matches these filters." : "No recommendations yet: a mining pass runs every 6 hours, or refresh now."}</Empty>
      ) : (
        <ul className="stack" aria-label="Recommendations" style={{ listStyle: "none", margin: 0, padding: 0 }}>
          {items.map((rec) => (
            <RecommendationCard key={rec.id} rec={rec} agents={names} canWrite={canWrite} />
          ))}
        </ul>
      )}
      {list.hasNextPage && (
        <div className="actions" style={{ marginTop: 12 }}>
          <Button onClick={() => void list.fetchNextPage()} busy={list.isFetchingNextPage}>
            Load more
          </Button>
        </div>
      )}
    </>
  );
}

export default function RecommendationsPage() {
  return (
    <Suspense fallback={<Loading />}>
      <Recommendations />
    </Suspense>
  );
}
