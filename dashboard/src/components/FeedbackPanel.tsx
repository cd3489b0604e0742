"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { formatScore } from "@/lib/format";

/** A run's feedback and, for roles that may give it, the form (once the run has an outcome). */
export function FeedbackPanel({ runId, finished }: { runId: string; finished: boolean }) {
  const canGive = useCan("runs:feedback");
  const queries = useQueryClient();
  const feedback = useQuery({
    queryKey: ["feedback", runId],
    queryFn: () => call(api.GET("/v1/runs/{run_id}/feedback", { params: { path: { run_id: runId } } })),
  });
  const [score, setScore] = useState(1);
  const [label, setLabel] = useState("");
  const [comment, setComment] = useState("");
  const give = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/runs/{run_id}/feedback", {
          params: { path: { run_id: runId } },
          body: { score, label: label || null, comment: comment || null },
        }),
      ),
    onSuccess: () => {
      setComment("");
      setLabel("");
      void queries.invalidateQueries({ queryKey: ["feedback", runId] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    give.mutate();
  };
  const invalid = give.error instanceof ApiError ? give.error : null;
  return (
    <Card title="Feedback">
      {feedback.data?.items.length ? (
        <ul className="stack" style={{ listStyle: "none", padding: 0, margin: "0 0 12px", gap: 6 }}>
          {feedback.data.items.map((f) => (
            <li key={f.id}>
              <strong>{formatScore(f.score)}</strong> {f.label && <span className="badge">{f.label}</span>} {f.comment}{" "}
              <span className="muted small">
                by {f.created_by.kind} · <Time iso={f.created_at} /> · v{f.agent_version}
              </span>
            </li>
          ))}
        </ul>
      ) : (
        <Empty>No feedback yet.</Empty>
      )}
      {canGive && finished && (
        <form className="stack" onSubmit={submit} aria-label="Give feedback" style={{ gap: 10 }}>
          <div className="row">
            <Button variant={score === 1 ? "primary" : "secondary"} aria-pressed={score === 1} onClick={() => setScore(1)}>
              Good (1)
            </Button>
            <Button variant={score === 0 ? "primary" : "secondary"} aria-pressed={score === 0} onClick={() => setScore(0)}>
              Bad (0)
            </Button>
            <Field label={`Score: ${formatScore(score)}`} error={invalid?.fieldError("score")}>
              <input type="range" min={0} max={1} step={0.05} value={score} onChange={(e) => setScore(Number(e.target.value))} />
            </Field>
          </div>
          <div className="row">
            <Field label="Label (optional)" error={invalid?.fieldError("label")}>
              <input value={label} onChange={(e) => setLabel(e.target.value)} placeholder="wrong-tool" />
            </Field>
            <Field label="Comment (optional)" error={invalid?.fieldError("comment")} className="grow">
              <input value={comment} onChange={(e) => setComment(e.target.value)} />
            </Field>
            <Button type="submit" variant="primary" busy={give.isPending}>
              Send feedback
            </Button>
          </div>
          {give.error && !invalid?.problem.errors && <ErrorBox error={give.error} />}
        </form>
      )}
    </Card>
  );
}
