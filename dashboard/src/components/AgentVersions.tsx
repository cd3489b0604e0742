"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";

import { api, call } from "@/api/client";
import type { AgentVersion } from "@/api/types";
import { Diff } from "@/components/Diff";
import { Badge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { describe } from "@/lib/diff";
import { formatScore } from "@/lib/format";

function configText(v: AgentVersion | undefined): string {
  if (!v) return "";
  return describe(v as unknown as Record<string, unknown>, ["version", "created_at", "created_by", "current", "feedback"]);
}

/** Versions of an agent: who made each, its feedback, promote (rollback = promote an older one), and a diff of any two. */
export function AgentVersions({ agentId }: { agentId: string }) {
  const canWrite = useCan("agents:write");
  const queries = useQueryClient();
  const notify = useToast();
  const versions = useQuery({
    queryKey: ["agent-versions", agentId],
    queryFn: () => call(api.GET("/v1/agents/{agent_id}/versions", { params: { path: { agent_id: agentId }, query: { limit: 200 } } })),
  });
  const items = versions.data?.items ?? [];
  const [left, setLeft] = useState<number | null>(null);
  const [right, setRight] = useState<number | null>(null);
  useEffect(() => {
    if (items.length >= 2 && left === null && right === null) {
      setLeft(items[1]!.version);
      setRight(items[0]!.version);
    }
  }, [items, left, right]);
  const promote = useMutation({
    mutationFn: (version: number) =>
      call(api.POST("/v1/agents/{agent_id}/versions/{version}/promote", { params: { path: { agent_id: agentId, version } } })),
    onSuccess: (_, version) => {
      notify(`v${version} is now current`);
      void queries.invalidateQueries({ queryKey: ["agent-versions", agentId] });
      void queries.invalidateQueries({ queryKey: ["agent", agentId] });
      void queries.invalidateQueries({ queryKey: ["agents"] });
    },
  });
  if (versions.isPending) return <Loading />;
  if (versions.error) return <ErrorBox error={versions.error} />;
  const current = items.find((v) => v.current)?.version;
  const byVersion = new Map(items.map((v) => [v.version, v]));
  return (
    <div className="stack">
      <ErrorBox error={promote.error} />
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Versions">
        <table>
          <caption className="sr-only">Versions</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Created</th>
              <th scope="col">By</th>
              <th scope="col" className="num">
                Feedback
              </th>
              <th scope="col" className="hide-sm">
                Model
              </th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((v) => (
              <tr key={v.version}>
                <td>
                  v{v.version} {v.current && <Badge tone="ok">current</Badge>}
                </td>
                <td>
                  <Time iso={v.created_at} />
                </td>
                <td className="small">
                  {v.created_by.kind} <span className="muted mono">{v.created_by.id}</span>
                </td>
                <td className="num">
                  {v.feedback.n ? `${formatScore(v.feedback.mean)} (n=${v.feedback.n})` : <span className="muted">—</span>}
                </td>
                <td className="hide-sm mono small">
                  {v.model.provider}:{v.model.name}
                </td>
                <td>
                  {canWrite && !v.current && (
                    <Button size="sm" busy={promote.isPending && promote.variables === v.version} onClick={() => promote.mutate(v.version)}>
                      {current !== undefined && v.version < current ? `Roll back to v${v.version}` : `Promote v${v.version}`}
                    </Button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {items.length >= 2 && (
        <Card title="Compare versions">
          <div className="row" style={{ marginBottom: 10 }}>
            <Field label="From">
              <select value={left ?? ""} onChange={(e) => setLeft(Number(e.target.value))}>
                {items.map((v) => (
                  <option key={v.version} value={v.version}>
                    v{v.version}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="To">
              <select value={right ?? ""} onChange={(e) => setRight(Number(e.target.value))}>
                {items.map((v) => (
                  <option key={v.version} value={v.version}>
                    v{v.version}
                  </option>
                ))}
              </select>
            </Field>
          </div>
          <Diff
            before={configText(byVersion.get(left ?? -1))}
            after={configText(byVersion.get(right ?? -1))}
            label={`Changes from v${left ?? "?"} to v${right ?? "?"}`}
          />
        </Card>
      )}
    </div>
  );
}
