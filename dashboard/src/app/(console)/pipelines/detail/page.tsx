"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { Suspense, useEffect, useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import type { Pipeline } from "@/api/types";
import { DefinitionEditor } from "@/components/DefinitionEditor";
import { Diff } from "@/components/Diff";
import { PipelineGraph } from "@/components/PipelineGraph";
import { PipelineRunsTable } from "@/components/PipelineRunsTable";
import { PipelineSchedule } from "@/components/PipelineSchedule";
import { Badge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { Dialog } from "@/components/ui/Dialog";
import { ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, Json, PageHeader, TabPanel, Tabs, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { stepsOf } from "@/lib/graph";
import { useIdParam, useUrlState } from "@/lib/url";

type Tab = "definition" | "versions" | "runs" | "schedule";

function Definition({ pipeline }: { pipeline: Pipeline }) {
  const canWrite = useCan("pipelines:write");
  const queries = useQueryClient();
  const notify = useToast();
  const [editing, setEditing] = useState(false);
  const save = useMutation({
    mutationFn: (definition: Record<string, unknown>) =>
      call(api.PUT("/v1/pipelines/{pipeline_id}", { params: { path: { pipeline_id: pipeline.id } }, body: { definition } })),
    onSuccess: (saved) => {
      setEditing(false);
      notify(`Saved as v${saved.version}`);
      void queries.invalidateQueries({ queryKey: ["pipeline", pipeline.id] });
      void queries.invalidateQueries({ queryKey: ["pipeline-versions", pipeline.id] });
    },
  });
  if (editing) {
    return (
      <Card title={`Edit (saves v${pipeline.version + 1})`}>
        <DefinitionEditor initial={pipeline.definition} saveLabel="Save new version" saving={save.isPending} saveError={save.error} onSave={(d) => save.mutate(d)} onCancel={() => setEditing(false)} />
      </Card>
    );
  }
  return (
    <div className="stack">
      <Card title={`v${pipeline.version}`} actions={canWrite && !pipeline.archived && <Button onClick={() => setEditing(true)}>Edit</Button>}>
        <PipelineGraph steps={stepsOf(pipeline.definition)} label={`Steps of ${pipeline.name}`} />
      </Card>
      <Card title="Definition">
        <Json value={pipeline.definition} label="Definition" />
      </Card>
    </div>
  );
}

function Versions({ pipelineId }: { pipelineId: string }) {
  const versions = useQuery({
    queryKey: ["pipeline-versions", pipelineId],
    queryFn: () => call(api.GET("/v1/pipelines/{pipeline_id}/versions", { params: { path: { pipeline_id: pipelineId }, query: { limit: 200 } } })),
  });
  const items = versions.data?.items ?? [];
  const [left, setLeft] = useState<number | null>(null);
  const [right, setRight] = useState<number | null>(null);
  useEffect(() => {
    if (items.length >= 2 && left === null) {
      const sorted = [...items].sort((a, b) => b.version - a.version);
      setLeft(sorted[1]!.version);
      setRight(sorted[0]!.version);
    }
  }, [items, left]);
  if (versions.isPending) return <Loading />;
  if (versions.error) return <ErrorBox error={versions.error} />;
  const text = (v: number | null) => JSON.stringify(items.find((x) => x.version === v)?.definition ?? {}, null, 2);
  return (
    <div className="stack">
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Versions">
        <table>
          <caption className="sr-only">Versions</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Created</th>
              <th scope="col">By</th>
              <th scope="col" className="num">
                Steps
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
                  {v.created_by.kind} <span className="mono muted">{v.created_by.id}</span>
                </td>
                <td className="num">{stepsOf(v.definition).length}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {items.length >= 2 && (
        <Card title="Compare versions">
          <div className="row" style={{ marginBottom: 10 }}>
            {([
              ["From", left, setLeft],
              ["To", right, setRight],
            ] as const).map(([label, value, set]) => (
              <Field key={label} label={label}>
                <select value={value ?? ""} onChange={(e) => set(Number(e.target.value))}>
                  {items.map((v) => (
                    <option key={v.version} value={v.version}>
                      v{v.version}
                    </option>
                  ))}
                </select>
              </Field>
            ))}
          </div>
          <Diff before={text(left)} after={text(right)} label="Definition changes" />
        </Card>
      )}
    </div>
  );
}

function StartPipelineRun({ pipeline }: { pipeline: Pipeline }) {
  const router = useRouter();
  const [open, setOpen] = useState(false);
  const [input, setInput] = useState("{}");
  const [parseError, setParseError] = useState<string | null>(null);
  const start = useMutation({
    mutationFn: (value: unknown) => call(api.POST("/v1/pipelines/{pipeline_id}/runs", { params: { path: { pipeline_id: pipeline.id } }, body: { input: value } })),
    onSuccess: (run) => router.push(`/pipelines/run?id=${run.id}`),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    try {
      const value = JSON.parse(input) as unknown;
      setParseError(null);
      start.mutate(value);
    } catch {
      setParseError("not valid JSON");
    }
  };
  const invalid = start.error instanceof ApiError ? start.error : null;
  const schema = (pipeline.definition as { inputs?: unknown }).inputs;
  return (
    <>
      <Button variant="primary" onClick={() => setOpen(true)}>
        Run pipeline
      </Button>
      <Dialog open={open} onClose={() => setOpen(false)} title={`Run ${pipeline.name}`}>
        <form className="stack" onSubmit={submit}>
          {schema !== undefined && (
            <details>
              <summary>Input schema</summary>
              <Json value={schema} />
            </details>
          )}
          <Field label="Input (JSON)" error={parseError ?? invalid?.problem.errors?.map((e) => `${e.field}: ${e.message}`).join("; ")}>
            <textarea rows={6} value={input} onChange={(e) => setInput(e.target.value)} />
          </Field>
          {start.error && !invalid?.problem.errors && <ErrorBox error={start.error} />}
          <div className="actions">
            <Button type="submit" variant="primary" busy={start.isPending}>
              Start
            </Button>
            <Button onClick={() => setOpen(false)}>Cancel</Button>
          </div>
        </form>
      </Dialog>
    </>
  );
}

function PipelineDetail() {
  const id = useIdParam();
  const [params, setParams] = useUrlState();
  const tab = (params.get("tab") as Tab | null) ?? "definition";
  const router = useRouter();
  const queries = useQueryClient();
  const canWrite = useCan("pipelines:write");
  const canStart = useCan("runs:start");
  const [confirm, setConfirm] = useState(false);
  const pipeline = useQuery({
    queryKey: ["pipeline", id],
    queryFn: () => call(api.GET("/v1/pipelines/{pipeline_id}", { params: { path: { pipeline_id: id } } })),
    enabled: Boolean(id),
  });
  const archive = useMutation({
    mutationFn: () => call(api.DELETE("/v1/pipelines/{pipeline_id}", { params: { path: { pipeline_id: id } } })),
    onSuccess: () => {
      void queries.invalidateQueries({ queryKey: ["pipelines"] });
      router.push("/pipelines");
    },
  });
  if (!id) return <ErrorBox error="No pipeline id in the address." />;
  if (pipeline.isPending) return <Loading />;
  if (pipeline.error) return <ErrorBox error={pipeline.error} />;
  const p = pipeline.data;
  return (
    <>
      <PageHeader
        crumbs={[{ href: "/pipelines", label: "Pipelines" }]}
        title={
          <>
            {p.name} {p.archived && <Badge>archived</Badge>}
          </>
        }
        description={
          <>
            <span className="mono">{p.id}</span> · v{p.version} · updated <Time iso={p.updated_at} />
          </>
        }
        actions={
          !p.archived && (
            <>
              {canStart && <StartPipelineRun pipeline={p} />}
              {canWrite && (
                <Button variant="danger" onClick={() => setConfirm(true)}>
                  Archive
                </Button>
              )}
            </>
          )
        }
      />
      <Tabs<Tab>
        label="Pipeline sections"
        value={tab}
        onChange={(t) => setParams({ tab: t === "definition" ? null : t })}
        tabs={[
          { id: "definition", label: "Definition" },
          { id: "versions", label: "Versions" },
          { id: "runs", label: "Runs" },
          { id: "schedule", label: "Schedule" },
        ]}
      />
      <TabPanel id={tab}>
        {tab === "definition" && <Definition pipeline={p} />}
        {tab === "versions" && <Versions pipelineId={p.id} />}
        {tab === "runs" && <PipelineRunsTable pipelineId={p.id} />}
        {tab === "schedule" && <PipelineSchedule pipelineId={p.id} />}
      </TabPanel>
      <Dialog open={confirm} onClose={() => setConfirm(false)} title={`Archive ${p.name}?`}>
        <p>New runs will be refused; its versions and runs stay readable.</p>
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

export default function PipelinePage() {
  return (
    <Suspense fallback={<Loading />}>
      <PipelineDetail />
    </Suspense>
  );
}
