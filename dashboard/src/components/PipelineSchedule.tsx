"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import { Button } from "@/components/ui/Button";
import { ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { toInstant } from "@/lib/dates";

const OVERLAPS = ["skip", "buffer_one", "buffer_all", "cancel_other", "allow_all"] as const;
type Overlap = (typeof OVERLAPS)[number];

/** A pipeline's Temporal Schedule: cron, input, overlap policy, pause; backfill a past range. */
export function PipelineSchedule({ pipelineId }: { pipelineId: string }) {
  const canWrite = useCan("pipelines:write");
  const queries = useQueryClient();
  const notify = useToast();
  const path = { params: { path: { pipeline_id: pipelineId } } };
  const schedule = useQuery({
    queryKey: ["pipeline-schedule", pipelineId],
    queryFn: async () => {
      try {
        return await call(api.GET("/v1/pipelines/{pipeline_id}/schedule", path));
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }
    },
  });
  const [cron, setCron] = useState("0 * * * *");
  const [input, setInput] = useState("{}");
  const [overlap, setOverlap] = useState<Overlap>("skip");
  const [paused, setPaused] = useState(false);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  useEffect(() => {
    if (schedule.data) {
      setCron(schedule.data.cron);
      setInput(JSON.stringify(schedule.data.input ?? {}, null, 2));
      setOverlap(schedule.data.overlap as Overlap);
      setPaused(schedule.data.paused);
    }
  }, [schedule.data]);
  const refresh = () => void queries.invalidateQueries({ queryKey: ["pipeline-schedule", pipelineId] });
  const save = useMutation({
    mutationFn: () => call(api.PUT("/v1/pipelines/{pipeline_id}/schedule", { ...path, body: { cron, input: JSON.parse(input || "null") as unknown, overlap, paused } })),
    onSuccess: () => {
      notify("Schedule saved");
      refresh();
    },
  });
  const remove = useMutation({
    mutationFn: () => call(api.DELETE("/v1/pipelines/{pipeline_id}/schedule", path)),
    onSuccess: () => {
      notify("Schedule deleted");
      refresh();
    },
  });
  const backfill = useMutation({
    mutationFn: () => call(api.POST("/v1/pipelines/{pipeline_id}/schedule/backfill", { ...path, body: { from: toInstant(from) ?? "", to: toInstant(to) ?? "" } })),
    onSuccess: () => notify("Backfill requested"),
  });
  if (schedule.isPending) return <Loading />;
  const invalid = save.error instanceof ApiError ? save.error : null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  return (
    <div className="stack">
      <ErrorBox error={schedule.error} />
      {schedule.data ? (
        <Card title="Current schedule">
          <dl className="kv">
            <dt>Cron</dt>
            <dd className="mono">{schedule.data.cron}</dd>
            <dt>State</dt>
            <dd>{schedule.data.paused ? "paused" : "active"}</dd>
            <dt>Overlap</dt>
            <dd>{schedule.data.overlap}</dd>
            <dt>Next fires</dt>
            <dd>
              {schedule.data.next_action_times.slice(0, 3).map((t) => (
                <div key={t}>
                  <Time iso={t} />
                </div>
              ))}
            </dd>
          </dl>
        </Card>
      ) : (
        <p className="muted">No schedule: the pipeline runs only when started.</p>
      )}
      {canWrite && (
        <Card title={schedule.data ? "Change the schedule" : "Add a schedule"}>
          <form className="stack" onSubmit={submit}>
            <div className="row">
              <Field label="Cron (5 fields, UTC)" error={invalid?.fieldError("cron")}>
                <input className="mono" required value={cron} onChange={(e) => setCron(e.target.value)} />
              </Field>
              <Field label="When a run is still going">
                <select value={overlap} onChange={(e) => setOverlap(e.target.value as Overlap)}>
                  {OVERLAPS.map((o) => (
                    <option key={o}>{o}</option>
                  ))}
                </select>
              </Field>
              <label className="check">
                <input type="checkbox" checked={paused} onChange={(e) => setPaused(e.target.checked)} /> Paused
              </label>
            </div>
            <Field label="Input of each run (JSON)" error={invalid?.fieldError("input")}>
              <textarea rows={4} value={input} onChange={(e) => setInput(e.target.value)} />
            </Field>
            {save.error && !invalid?.problem.errors && <ErrorBox error={save.error} />}
            <div className="actions">
              <Button type="submit" variant="primary" busy={save.isPending}>
                Save schedule
              </Button>
              {schedule.data && (
                <Button variant="danger" busy={remove.isPending} onClick={() => remove.mutate()}>
                  Delete schedule
                </Button>
              )}
            </div>
          </form>
        </Card>
      )}
      {canWrite && schedule.data && (
        <Card title="Backfill">
          <div className="row">
            <Field label="From">
              <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
            </Field>
            <Field label="To">
              <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} />
            </Field>
            <Button busy={backfill.isPending} disabled={!from || !to} onClick={() => backfill.mutate()}>
              Run the missed fires
            </Button>
          </div>
          <ErrorBox error={backfill.error} />
        </Card>
      )}
    </div>
  );
}
