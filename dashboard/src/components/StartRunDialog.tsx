"use client";
import { useMutation } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import { useAgents } from "@/api/queries";
import { AgentSelect, SUBJECT_HINT } from "@/components/AgentSelect";
import { Button } from "@/components/ui/Button";
import { Dialog } from "@/components/ui/Dialog";
import { ErrorBox } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";

/** Start a run of an agent and open it. */
export function StartRunDialog({ agentId, threadId, label = "Start a run" }: { agentId?: string; threadId?: string; label?: string }) {
  const [open, setOpen] = useState(false);
  const agents = useAgents(open && !agentId);
  const [chosen, setChosen] = useState(agentId ?? "");
  const [input, setInput] = useState("");
  const [subject, setSubject] = useState("");
  const router = useRouter();
  const start = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/agents/{agent_id}/runs", {
          params: { path: { agent_id: chosen } },
          body: { input, subject: subject || null, thread_id: threadId ?? null },
        }),
      ),
    onSuccess: (run) => router.push(`/runs/detail?id=${run.id}`),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    start.mutate();
  };
  const error = start.error instanceof ApiError ? start.error : null;
  return (
    <>
      <Button variant="primary" onClick={() => setOpen(true)}>
        {label}
      </Button>
      <Dialog open={open} onClose={() => setOpen(false)} title={threadId ? "Continue the conversation" : "Start a run"}>
        <form className="stack" onSubmit={submit}>
          {!agentId && (
            <Field label="Agent">
              <AgentSelect agents={agents.data?.items} value={chosen} onChange={(e) => setChosen(e.target.value)} />
            </Field>
          )}
          <Field label="Input" error={error?.fieldError("input")}>
            <textarea required value={input} onChange={(e) => setInput(e.target.value)} placeholder="What is 12 * (3 + 4)?" />
          </Field>
          <Field label="Subject (optional)" hint={SUBJECT_HINT} error={error?.fieldError("subject")}>
            <input value={subject} onChange={(e) => setSubject(e.target.value)} />
          </Field>
          {start.error && !error?.problem.errors && <ErrorBox error={start.error} />}
          <div className="actions">
            <Button type="submit" variant="primary" busy={start.isPending} disabled={!chosen}>
              Start
            </Button>
            <Button onClick={() => setOpen(false)}>Cancel</Button>
          </div>
        </form>
      </Dialog>
    </>
  );
}
