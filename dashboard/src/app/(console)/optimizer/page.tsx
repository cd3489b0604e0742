"use client";
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { Suspense } from "react";

import { api, call } from "@/api/client";
import { agentNames, useAgents } from "@/api/queries";
import { NewDataset, StartExperiment, StartOptimizerRun, StartReplay } from "@/components/OptimizerForms";
import { Badge, StatusBadge } from "@/components/ui/Badge";
import { Empty, ErrorBox, Loading } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { useUrlState } from "@/lib/url";

function OptimizerRuns({ agentId, names }: { agentId: string | null; names: Map<string, string> }) {
  const runs = useQuery({
    queryKey: ["optimizer-runs", agentId],
    queryFn: () => call(api.GET("/v1/optimizer/runs", { params: { query: { agent_id: agentId ?? undefined, limit: 50 } } })),
    refetchInterval: 10_000,
  });
  if (runs.isPending) return <Loading />;
  if (runs.error) return <ErrorBox error={runs.error} />;
  if (!runs.data.items.length) return <Empty>No optimizer runs yet.</Empty>;
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label="Optimizer runs">
      <table>
        <caption className="sr-only">Optimizer runs</caption>
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col">Run</th>
            <th scope="col">Agent</th>
            <th scope="col">Decision</th>
            <th scope="col" className="num">
              Candidates
            </th>
            <th scope="col">Started</th>
          </tr>
        </thead>
        <tbody>
          {runs.data.items.map((r) => (
            <tr key={r.id}>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td>
                <Link className="row-link mono" href={`/optimizer/run?id=${r.id}`}>
                  {r.id}
                </Link>
              </td>
              <td>{names.get(r.agent_id) ?? r.agent_id}</td>
              <td>
                {r.winner ? (
                  <>
                    v{r.winner} over v{r.baseline_version} {r.promoted ? <Badge tone="ok">promoted</Badge> : <Badge>not promoted</Badge>}
                  </>
                ) : (
                  <span className="muted">{r.status === "completed" ? "kept the baseline" : "—"}</span>
                )}
              </td>
              <td className="num">{r.candidates.length}</td>
              <td>
                <Time iso={r.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AgentSections({ agentId }: { agentId: string }) {
  const path = { params: { path: { agent_id: agentId }, query: { limit: 50 } } };
  const experiments = useQuery({ queryKey: ["experiments", agentId], queryFn: () => call(api.GET("/v1/agents/{agent_id}/experiments", path)) });
  const replays = useQuery({ queryKey: ["replays", agentId], queryFn: () => call(api.GET("/v1/agents/{agent_id}/replays", path)) });
  const datasets = useQuery({ queryKey: ["datasets", agentId], queryFn: () => call(api.GET("/v1/agents/{agent_id}/datasets", path)) });
  return (
    <div className="grid-3">
      <Card title="Experiments">
        <ErrorBox error={experiments.error} />
        {experiments.data?.items.length ? (
          <ul className="stack" style={{ listStyle: "none", padding: 0, gap: 6 }}>
            {experiments.data.items.map((e) => (
              <li key={e.id}>
                <Link href={`/optimizer/experiment?id=${e.id}`}>
                  v{e.candidate_version} vs v{e.control_version}
                </Link>{" "}
                <StatusBadge status={e.status} /> <span className="muted small">{Math.round(e.traffic * 100)}% traffic</span>
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No experiments.</Empty>
        )}
      </Card>
      <Card title="Replays">
        <ErrorBox error={replays.error} />
        {replays.data?.items.length ? (
          <ul className="stack" style={{ listStyle: "none", padding: 0, gap: 6 }}>
            {replays.data.items.map((r) => (
              <li key={r.id}>
                <Link href={`/optimizer/replay?id=${r.id}`}>v{r.version}</Link> on {r.run_ids.length} runs <StatusBadge status={r.status} />{" "}
                <Time iso={r.created_at} />
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No replays.</Empty>
        )}
      </Card>
      <Card title="Datasets">
        <ErrorBox error={datasets.error} />
        {datasets.data?.items.length ? (
          <ul className="stack" style={{ listStyle: "none", padding: 0, gap: 6 }}>
            {datasets.data.items.map((d) => (
              <li key={d.id}>
                <strong>{d.name}</strong> <span className="muted small">{d.size} examples · <Time iso={d.created_at} /></span>
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No datasets.</Empty>
        )}
      </Card>
    </div>
  );
}

function Optimizer() {
  const [params, setParams] = useUrlState();
  const agentId = params.get("agent");
  const agents = useAgents();
  const names = agentNames(agents.data?.items);
  const canWrite = useCan("optimizer:write");
  return (
    <div className="stack">
      <PageHeader
        title="Optimizer"
        description="Candidate versions scored offline on datasets, online experiments between versions, and replays of recorded runs."
        actions={
          canWrite &&
          agentId && (
            <>
              <NewDataset agentId={agentId} />
              <StartOptimizerRun agentId={agentId} />
              <StartExperiment agentId={agentId} />
              <StartReplay agentId={agentId} />
            </>
          )
        }
      />
      <div className="row">
        <Field label="Agent" hint="Experiments, replays and datasets belong to an agent.">
          <select value={agentId ?? ""} onChange={(e) => setParams({ agent: e.target.value })}>
            <option value="">All agents</option>
            {(agents.data?.items ?? []).map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <Card title="Optimizer runs">
        <OptimizerRuns agentId={agentId} names={names} />
      </Card>
      {agentId ? <AgentSections agentId={agentId} /> : <p className="muted">Choose an agent to see its experiments, replays and datasets.</p>}
    </div>
  );
}

export default function OptimizerPage() {
  return (
    <Suspense fallback={<Loading />}>
      <Optimizer />
    </Suspense>
  );
}
