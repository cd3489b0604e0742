"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { Suspense, useState } from "react";

import { api, call } from "@/api/client";
import type { Agent, AgentConfig } from "@/api/types";
import { AgentForm } from "@/components/AgentForm";
import { AgentVersions } from "@/components/AgentVersions";
import { StartRunDialog } from "@/components/StartRunDialog";
import { StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { Dialog } from "@/components/ui/Dialog";
import { Empty, ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Card, PageHeader, TabPanel, Tabs, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { formatUsd } from "@/lib/format";
import { useIdParam, useUrlState } from "@/lib/url";

type Tab = "configuration" | "versions" | "runs";

function Configuration({ agent }: { agent: Agent }) {
  const canWrite = useCan("agents:write");
  const queries = useQueryClient();
  const notify = useToast();
  const [editing, setEditing] = useState(false);
  const edit = useMutation({
    mutationFn: ({ config, promote }: { config: AgentConfig; promote: boolean }) =>
      call(api.PATCH("/v1/agents/{agent_id}", { params: { path: { agent_id: agent.id } }, body: { ...config, promote } })),
    onSuccess: (_, { promote }) => {
      setEditing(false);
      notify(promote ? "Saved as a new current version" : "Saved as a new version (not promoted)");
      void queries.invalidateQueries({ queryKey: ["agent", agent.id] });
      void queries.invalidateQueries({ queryKey: ["agent-versions", agent.id] });
      void queries.invalidateQueries({ queryKey: ["agents"] });
    },
  });
  if (editing) {
    return (
      <Card title={`Edit ${agent.name} (saves v${agent.version + 1}…)`}>
        <AgentForm
          initial={agent}
          submitLabel="Save new version"
          promoteOption
          busy={edit.isPending}
          error={edit.error}
          onSubmit={(config, promote) => edit.mutate({ config, promote })}
          onCancel={() => setEditing(false)}
        />
      </Card>
    );
  }
  return (
    <Card title={`Current version: v${agent.version}`} actions={canWrite && <Button onClick={() => setEditing(true)}>Edit</Button>}>
      <dl className="kv">
        <dt>Model</dt>
        <dd className="mono">
          {agent.model.provider}:{agent.model.name}
          {agent.model.base_url && ` @ ${agent.model.base_url}`}
        </dd>
        <dt>Tools</dt>
        <dd>
          {agent.tools.length
            ? agent.tools.map((t) => (typeof t === "string" ? t : `${t.name}${t.requires_approval ? " (approval)" : ""}`)).join(", ")
            : "—"}
        </dd>
        <dt>Memory</dt>
        <dd>{agent.memory.enabled ? `on (recall ${agent.memory.recall_k})` : "off"}</dd>
        <dt>Double texting</dt>
        <dd>{agent.double_texting}</dd>
        <dt>Instructions</dt>
        <dd>
          <pre className="block">{agent.instructions}</pre>
        </dd>
      </dl>
    </Card>
  );
}

function AgentRuns({ agentId }: { agentId: string }) {
  const runs = useQuery({
    queryKey: ["runs", { agent_id: agentId, limit: 20 }],
    queryFn: () => call(api.GET("/v1/runs", { params: { query: { agent_id: agentId, limit: 20 } } })),
  });
  if (runs.isPending) return <Loading />;
  if (runs.error) return <ErrorBox error={runs.error} />;
  return (
    <div className="stack">
      {runs.data.items.length === 0 ? (
        <Empty>No runs yet.</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Recent runs">
          <table>
            <caption className="sr-only">Recent runs</caption>
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Run</th>
                <th scope="col">Version</th>
                <th scope="col" className="hide-sm">
                  Input
                </th>
                <th scope="col" className="num">
                  Cost
                </th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {runs.data.items.map((r) => (
                <tr key={r.id}>
                  <td>
                    <StatusBadge status={r.status} />
                  </td>
                  <td>
                    <Link className="row-link mono" href={`/runs/detail?id=${r.id}`}>
                      {r.id}
                    </Link>
                  </td>
                  <td>v{r.agent_version}</td>
                  <td className="clip hide-sm">{r.input}</td>
                  <td className="num">{formatUsd(r.usage.cost_usd)}</td>
                  <td>
                    <Time iso={r.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Link href={`/runs?agent=${agentId}`}>All runs of this agent →</Link>
    </div>
  );
}

function AgentDetail() {
  const id = useIdParam();
  const [params, setParams] = useUrlState();
  const tab = (params.get("tab") as Tab | null) ?? "configuration";
  const router = useRouter();
  const queries = useQueryClient();
  const canWrite = useCan("agents:write");
  const canStart = useCan("runs:start");
  const canOptimize = useCan("optimizer:read");
  const [confirm, setConfirm] = useState(false);
  const agent = useQuery({
    queryKey: ["agent", id],
    queryFn: () => call(api.GET("/v1/agents/{agent_id}", { params: { path: { agent_id: id } } })),
    enabled: Boolean(id),
  });
  const archive = useMutation({
    mutationFn: () => call(api.DELETE("/v1/agents/{agent_id}", { params: { path: { agent_id: id } } })),
    onSuccess: () => {
      void queries.invalidateQueries({ queryKey: ["agents"] });
      router.push("/agents");
    },
  });
  if (!id) return <ErrorBox error="No agent id in the address." />;
  if (agent.isPending) return <Loading />;
  if (agent.error) return <ErrorBox error={agent.error} />;
  const a = agent.data;
  return (
    <>
      <PageHeader
        crumbs={[{ href: "/agents", label: "Agents" }]}
        title={a.name}
        description={
          <>
            <span className="mono">{a.id}</span> · v{a.version} · updated <Time iso={a.updated_at} />
          </>
        }
        actions={
          <>
            {canOptimize && (
              <Link className="btn" href={`/optimizer?agent=${a.id}`}>
                Optimizer
              </Link>
            )}
            {canStart && <StartRunDialog agentId={a.id} />}
            {canWrite && (
              <Button variant="danger" onClick={() => setConfirm(true)}>
                Archive
              </Button>
            )}
          </>
        }
      />
      <Tabs<Tab>
        label="Agent sections"
        value={tab}
        onChange={(t) => setParams({ tab: t === "configuration" ? null : t })}
        tabs={[
          { id: "configuration", label: "Configuration" },
          { id: "versions", label: "Versions" },
          { id: "runs", label: "Runs" },
        ]}
      />
      <TabPanel id={tab}>
        {tab === "configuration" && <Configuration agent={a} />}
        {tab === "versions" && <AgentVersions agentId={a.id} />}
        {tab === "runs" && <AgentRuns agentId={a.id} />}
      </TabPanel>
      <Dialog open={confirm} onClose={() => setConfirm(false)} title={`Archive ${a.name}?`}>
        <p>New runs and edits will be refused; its versions, runs and threads stay readable.</p>
        <ErrorBox error={archive.error} />
        <div className="actions">
          <Button variant="danger" busy={archive.isPending} onClick={() => archive.mutate()}>
            Archive
          </Button>
          <Button onClick={() => setConfirm(false)}>Keep it</Button>
        </div>
      </Dialog>
    </>
  );
}

export default function AgentPage() {
  return (
    <Suspense fallback={<Loading />}>
      <AgentDetail />
    </Suspense>
  );
}
