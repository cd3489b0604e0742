"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import type { components } from "@/api/schema";
import { StatusBadge } from "@/components/ui/Badge";
import { Button } from "@/components/ui/Button";
import { Dialog } from "@/components/ui/Dialog";
import { Empty, ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, CopyButton, Time } from "@/components/ui/Misc";

type WebhookEvent = components["schemas"]["WebhookCreate"]["events"][number];
const EVENTS: WebhookEvent[] = ["run.completed", "run.failed", "run.cancelled", "run.waiting_approval", "pipeline_run.completed", "pipeline_run.failed", "pipeline_run.waiting_approval"];

function Deliveries({ webhookId }: { webhookId: string }) {
  const deliveries = useQuery({
    queryKey: ["deliveries", webhookId],
    queryFn: () => call(api.GET("/v1/webhooks/{webhook_id}/deliveries", { params: { path: { webhook_id: webhookId }, query: { limit: 50 } } })),
    refetchInterval: 10_000,
  });
  if (deliveries.isPending) return <Loading />;
  if (deliveries.error) return <ErrorBox error={deliveries.error} />;
  if (!deliveries.data.items.length) return <Empty>No deliveries yet.</Empty>;
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label="Deliveries">
      <table>
        <caption className="sr-only">Deliveries</caption>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">
              Attempts
            </th>
            <th scope="col">Last answer</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {deliveries.data.items.map((d) => (
            <tr key={d.id}>
              <td className="mono small">{d.event_type}</td>
              <td>
                <StatusBadge status={d.status} />
              </td>
              <td className="num">{d.attempts}</td>
              <td className="small">{d.last_status_code ?? d.last_error ?? "—"}</td>
              <td>
                <Time iso={d.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export default function WebhooksPage() {
  const queries = useQueryClient();
  const notify = useToast();
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<WebhookEvent[]>(["run.completed"]);
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const hooks = useQuery({ queryKey: ["webhooks"], queryFn: () => call(api.GET("/v1/webhooks", { params: { query: { limit: 200 } } })) });
  const create = useMutation({
    mutationFn: () => call(api.POST("/v1/webhooks", { body: { url, events } })),
    onSuccess: (created) => {
      setSecret(created.secret);
      setUrl("");
      void queries.invalidateQueries({ queryKey: ["webhooks"] });
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => call(api.DELETE("/v1/webhooks/{webhook_id}", { params: { path: { webhook_id: id } } })),
    onSuccess: () => {
      notify("Webhook deleted");
      void queries.invalidateQueries({ queryKey: ["webhooks"] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const invalid = create.error instanceof ApiError ? create.error : null;
  return (
    <div className="stack">
      <Card title="New webhook">
        <form className="stack" onSubmit={submit}>
          <Field label="URL" error={invalid?.fieldError("url")}>
            <input type="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://example.com/hooks/aimpact" />
          </Field>
          <fieldset>
            <legend>Events</legend>
            <div className="row">
              {EVENTS.map((event) => (
                <label key={event} className="check">
                  <input
                    type="checkbox"
                    checked={events.includes(event)}
                    onChange={(e) => setEvents(e.target.checked ? [...events, event] : events.filter((x) => x !== event))}
                  />
                  <span className="mono small">{event}</span>
                </label>
              ))}
            </div>
            {invalid?.fieldError("events") && <p className="error">{invalid.fieldError("events")}</p>}
          </fieldset>
          {create.error && !invalid?.problem.errors && <ErrorBox error={create.error} />}
          <div className="actions">
            <Button type="submit" variant="primary" busy={create.isPending} disabled={!events.length}>
              Add webhook
            </Button>
          </div>
        </form>
      </Card>
      <ErrorBox error={hooks.error ?? remove.error} />
      {hooks.isPending ? (
        <Loading />
      ) : hooks.data?.items.length ? (
        hooks.data.items.map((h) => (
          <Card
            key={h.id}
            title={<span className="mono small">{h.url}</span>}
            actions={
              <>
                <Button size="sm" aria-expanded={open === h.id} onClick={() => setOpen(open === h.id ? null : h.id)}>
                  {open === h.id ? "Hide deliveries" : "Deliveries"}
                </Button>
                <Button size="sm" variant="danger" onClick={() => remove.mutate(h.id)} aria-label={`Delete webhook ${h.url}`}>
                  Delete
                </Button>
              </>
            }
          >
            <p className="muted small">
              {h.events.join(", ")} · added <Time iso={h.created_at} />
            </p>
            {open === h.id && <Deliveries webhookId={h.id} />}
          </Card>
        ))
      ) : (
        <Empty>No webhooks.</Empty>
      )}
      <Dialog open={secret !== null} onClose={() => setSecret(null)} title="Signing secret">
        <div className="alert alert-info">Shown once: deliveries carry X-AImPact-Signature, an HMAC-SHA256 with this secret.</div>
        <code className="mono" style={{ overflowWrap: "anywhere" }}>
          {secret}
        </code>
        <div className="actions">
          {secret && <CopyButton text={secret} label="Copy secret" />}
          <Button variant="primary" onClick={() => setSecret(null)}>
            Done
          </Button>
        </div>
      </Dialog>
    </div>
  );
}
