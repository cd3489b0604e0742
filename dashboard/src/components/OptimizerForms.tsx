"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState, type FormEvent, type ReactNode } from "react";

import { api, ApiError, call } from "@/api/client";
import { Button } from "@/components/ui/Button";
import { Dialog } from "@/components/ui/Dialog";
import { ErrorBox } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";

function FormDialog({ title, open, setOpen, busy, error, onSubmit, children }: { title: string; open: boolean; setOpen: (o: boolean) => void; busy: boolean; error: unknown; onSubmit: () => void; children: ReactNode }) {
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onSubmit();
  };
  return (
    <>
      <Button onClick={() => setOpen(true)}>{title}</Button>
      <Dialog open={open} onClose={() => setOpen(false)} title={title}>
        <form className="stack" onSubmit={submit}>
          {children}
          <ErrorBox error={error} />
          <div className="actions">
            <Button type="submit" variant="primary" busy={busy}>
              Start
            </Button>
            <Button onClick={() => setOpen(false)}>Cancel</Button>
          </div>
        </form>
      </Dialog>
    </>
  );
}

function useVersions(agentId: string, enabled: boolean) {
  return useQuery({
    queryKey: ["agent-versions", agentId],
    queryFn: () => call(api.GET("/v1/agents/{agent_id}/versions", { params: { path: { agent_id: agentId }, query: { limit: 200 } } })),
    enabled,
  });
}

/** A dataset from the agent's rated runs, or from examples given as JSON lines. */
export function NewDataset({ agentId }: { agentId: string }) {
  const queries = useQueryClient();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("from-feedback");
  const [minScore, setMinScore] = useState("");
  const [examples, setExamples] = useState("");
  const create = useMutation({
    mutationFn: () => {
      const parsed = examples.trim() ? examples.trim().split("\n").map((line) => JSON.parse(line) as { input: string; expected?: string }) : null;
      const fromRuns = parsed && !minScore ? null : { min_score: minScore ? Number(minScore) : null };
      return call(api.POST("/v1/agents/{agent_id}/datasets", { params: { path: { agent_id: agentId } }, body: { name, from_runs: fromRuns, examples: parsed } }));
    },
    onSuccess: () => {
      setOpen(false);
      void queries.invalidateQueries({ queryKey: ["datasets", agentId] });
    },
  });
  const invalid = create.error instanceof ApiError ? create.error : null;
  return (
    <FormDialog title="New dataset" open={open} setOpen={setOpen} busy={create.isPending} error={create.error} onSubmit={() => create.mutate()}>
      <Field label="Name" error={invalid?.fieldError("name")}>
        <input required value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label="From runs with mean feedback of at least (optional)" hint="0..1; their outputs become the expected answers." error={invalid?.fieldError("from_runs.min_score")}>
        <input type="number" min={0} max={1} step={0.05} value={minScore} onChange={(e) => setMinScore(e.target.value)} />
      </Field>
      <Field label="Examples (one JSON object per line, optional)" hint='{"input": "2 + 2", "expected": "4"}' error={invalid?.fieldError("examples")}>
        <textarea rows={5} value={examples} onChange={(e) => setExamples(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

/** An optimizer run on one of the agent's datasets. */
export function StartOptimizerRun({ agentId }: { agentId: string }) {
  const router = useRouter();
  const [open, setOpen] = useState(false);
  const datasets = useQuery({
    queryKey: ["datasets", agentId],
    queryFn: () => call(api.GET("/v1/agents/{agent_id}/datasets", { params: { path: { agent_id: agentId }, query: { limit: 200 } } })),
    enabled: open,
  });
  const [dataset, setDataset] = useState("");
  const [metric, setMetric] = useState<"exact" | "contains">("exact");
  const [maxEvals, setMaxEvals] = useState("200");
  const [autoPromote, setAutoPromote] = useState(false);
  const start = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/agents/{agent_id}/optimizer/runs", {
          params: { path: { agent_id: agentId } },
          body: { dataset_id: dataset || null, metric: { type: metric }, budget: { max_evals: Number(maxEvals) }, auto_promote: autoPromote },
        }),
      ),
    onSuccess: (run) => router.push(`/optimizer/run?id=${run.id}`),
  });
  const invalid = start.error instanceof ApiError ? start.error : null;
  return (
    <FormDialog title="Start an optimizer run" open={open} setOpen={setOpen} busy={start.isPending} error={start.error} onSubmit={() => start.mutate()}>
      <Field label="Dataset" error={invalid?.fieldError("dataset_id")}>
        <select value={dataset} onChange={(e) => setDataset(e.target.value)}>
          <option value="">The newest dataset</option>
          {(datasets.data?.items ?? []).map((d) => (
            <option key={d.id} value={d.id}>
              {d.name} ({d.size} examples)
            </option>
          ))}
        </select>
      </Field>
      <Field label="Metric" error={invalid?.fieldError("metric")}>
        <select value={metric} onChange={(e) => setMetric(e.target.value as "exact" | "contains")}>
          <option value="exact">exact (output equals expected)</option>
          <option value="contains">contains (output contains expected)</option>
        </select>
      </Field>
      <Field label="Budget: evaluations at most" error={invalid?.fieldError("budget.max_evals")}>
        <input type="number" min={1} value={maxEvals} onChange={(e) => setMaxEvals(e.target.value)} />
      </Field>
      <label className="check">
        <input type="checkbox" checked={autoPromote} onChange={(e) => setAutoPromote(e.target.checked)} /> Promote the winner when it is significantly better
      </label>
    </FormDialog>
  );
}

/** An online experiment: a share of new subjects gets a candidate version. */
export function StartExperiment({ agentId }: { agentId: string }) {
  const router = useRouter();
  const [open, setOpen] = useState(false);
  const versions = useVersions(agentId, open);
  const [candidate, setCandidate] = useState("");
  const [traffic, setTraffic] = useState("0.5");
  const start = useMutation({
    mutationFn: () =>
      call(api.POST("/v1/agents/{agent_id}/experiments", { params: { path: { agent_id: agentId } }, body: { candidate_version: Number(candidate), traffic: Number(traffic) } })),
    onSuccess: (experiment) => router.push(`/optimizer/experiment?id=${experiment.id}`),
  });
  const invalid = start.error instanceof ApiError ? start.error : null;
  return (
    <FormDialog title="Start an experiment" open={open} setOpen={setOpen} busy={start.isPending} error={start.error} onSubmit={() => start.mutate()}>
      <Field label="Candidate version" error={invalid?.fieldError("candidate_version")}>
        <select required value={candidate} onChange={(e) => setCandidate(e.target.value)}>
          <option value="">Choose a version…</option>
          {(versions.data?.items ?? [])
            .filter((v) => !v.current)
            .map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}
              </option>
            ))}
        </select>
      </Field>
      <Field label="Traffic to the candidate (0..1)" error={invalid?.fieldError("traffic")}>
        <input type="number" min={0} max={1} step={0.05} value={traffic} onChange={(e) => setTraffic(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

/** Replay recorded runs with another version, tool calls answered from the recording. */
export function StartReplay({ agentId }: { agentId: string }) {
  const router = useRouter();
  const [open, setOpen] = useState(false);
  const versions = useVersions(agentId, open);
  const [version, setVersion] = useState("");
  const [sample, setSample] = useState("20");
  const start = useMutation({
    mutationFn: () =>
      call(api.POST("/v1/agents/{agent_id}/replays", { params: { path: { agent_id: agentId } }, body: { version: Number(version), sample: Number(sample) } })),
    onSuccess: (replay) => router.push(`/optimizer/replay?id=${replay.id}`),
  });
  const invalid = start.error instanceof ApiError ? start.error : null;
  return (
    <FormDialog title="Start a replay" open={open} setOpen={setOpen} busy={start.isPending} error={start.error} onSubmit={() => start.mutate()}>
      <Field label="Version to replay with" error={invalid?.fieldError("version")}>
        <select required value={version} onChange={(e) => setVersion(e.target.value)}>
          <option value="">Choose a version…</option>
          {(versions.data?.items ?? []).map((v) => (
            <option key={v.version} value={v.version}>
              v{v.version}
              {v.current ? " (current)" : ""}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Recent completed runs to replay" error={invalid?.fieldError("sample")}>
        <input type="number" min={1} value={sample} onChange={(e) => setSample(e.target.value)} />
      </Field>
    </FormDialog>
  );
}
