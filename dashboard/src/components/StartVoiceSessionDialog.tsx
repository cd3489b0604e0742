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

/** Start a voice session with an agent's current version and open it. */
export function StartVoiceSessionDialog() {
  const [open, setOpen] = useState(false);
  const agents = useAgents(open);
  const [agentId, setAgentId] = useState("");
  const [subject, setSubject] = useState("");
  const router = useRouter();
  const start = useMutation({
    mutationFn: () => call(api.POST("/v1/voice/sessions", { body: { agent_id: agentId, subject: subject || null } })),
    onSuccess: (session) => router.push(`/voice/session?id=${session.id}`),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    start.mutate();
  };
  const error = start.error instanceof ApiError ? start.error : null;
  return (
    <>
      <Button variant="primary" onClick={() => setOpen(true)}>
        Start a voice session
      </Button>
      <Dialog open={open} onClose={() => setOpen(false)} title="Start a voice session">
        <form className="stack" onSubmit={submit}>
          <Field label="Agent" error={error?.fieldError("agent_id")}>
            <AgentSelect agents={agents.data?.items} value={agentId} onChange={(e) => setAgentId(e.target.value)} />
          </Field>
          <Field label="Subject (optional)" hint={SUBJECT_HINT} error={error?.fieldError("subject")}>
            <input value={subject} onChange={(e) => setSubject(e.target.value)} />
          </Field>
          {start.error && !error?.problem.errors && <ErrorBox error={start.error} />}
          <div className="actions">
            <Button type="submit" variant="primary" busy={start.isPending} disabled={!agentId}>
              Start
            </Button>
            <Button onClick={() => setOpen(false)}>Cancel</Button>
          </div>
        </form>
      </Dialog>
    </>
  );
}
