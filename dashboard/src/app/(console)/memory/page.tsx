"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Suspense, useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import { Button } from "@/components/ui/Button";
import { Dialog } from "@/components/ui/Dialog";
import { Empty, ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, PageHeader, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";
import { formatScore } from "@/lib/format";
import { useUrlState } from "@/lib/url";

function Memory() {
  const [params, setParams] = useUrlState();
  const q = params.get("q") ?? "";
  const subject = params.get("subject") ?? "";
  const [text, setText] = useState(q);
  const [who, setWho] = useState(subject);
  const canWrite = useCan("memory:write");
  const canErase = useCan("memory:erase");
  const queries = useQueryClient();
  const notify = useToast();
  const [confirm, setConfirm] = useState(false);
  const [note, setNote] = useState("");
  const search = useQuery({
    queryKey: ["memory-search", q, subject],
    queryFn: () => call(api.GET("/v1/memories/search", { params: { query: { q, subject: subject || undefined, k: 20 } } })),
    enabled: Boolean(q),
  });
  const listed = useQuery({
    queryKey: ["memories", subject],
    queryFn: () => call(api.GET("/v1/memories", { params: { query: { subject, limit: 100 } } })),
    enabled: Boolean(subject),
  });
  const erase = useMutation({
    mutationFn: () => call(api.DELETE("/v1/memories", { params: { query: { subject } } })),
    onSuccess: (result) => {
      setConfirm(false);
      notify(`Erased everything about ${result.subject}`);
      void queries.invalidateQueries({ queryKey: ["memories"] });
      void queries.invalidateQueries({ queryKey: ["memory-search"] });
    },
  });
  const add = useMutation({
    mutationFn: () => call(api.POST("/v1/memories", { body: { subject, text: note } })),
    onSuccess: () => {
      setNote("");
      notify("Memory saved");
      void queries.invalidateQueries({ queryKey: ["memories", subject] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setParams({ q: text.trim() || null, subject: who.trim() || null });
  };
  const addError = add.error instanceof ApiError ? add.error : null;
  return (
    <div className="stack">
      <PageHeader title="Memory" description="Long-term memories agents keep per subject (the end user they talk to)." />
      <form className="row card" role="search" aria-label="Search memories" onSubmit={submit}>
        <Field label="Search" className="grow">
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="where does she live?" />
        </Field>
        <Field label="Subject">
          <input value={who} onChange={(e) => setWho(e.target.value)} placeholder="customer-42" />
        </Field>
        <Button type="submit" variant="primary">
          Search
        </Button>
      </form>
      {q && (
        <Card title={`Results for “${q}”${subject ? ` about ${subject}` : ""}`}>
          <ErrorBox error={search.error} />
          {search.isPending ? (
            <Loading />
          ) : search.data?.items.length ? (
            <ul className="stack" style={{ listStyle: "none", padding: 0, gap: 6 }}>
              {search.data.items.map((hit) => (
                <li key={hit.id}>
                  <strong>{formatScore(hit.score)}</strong> {hit.text} <span className="muted small">· {hit.subject}</span>
                </li>
              ))}
            </ul>
          ) : (
            <Empty>Nothing found.</Empty>
          )}
        </Card>
      )}
      {subject && (
        <Card
          title={`Everything about ${subject}`}
          actions={
            canErase && (
              <Button variant="danger" onClick={() => setConfirm(true)}>
                Erase this subject
              </Button>
            )
          }
        >
          <ErrorBox error={listed.error} />
          {listed.isPending ? (
            <Loading />
          ) : listed.data?.items.length ? (
            <ul className="stack" style={{ listStyle: "none", padding: 0, gap: 6 }}>
              {listed.data.items.map((m) => (
                <li key={m.id}>
                  {m.text} <span className="muted small">· {m.status} · used {m.use_count}× · <Time iso={m.created_at} /></span>
                </li>
              ))}
            </ul>
          ) : (
            <Empty>No memories about this subject.</Empty>
          )}
          {canWrite && (
            <form
              className="row"
              style={{ marginTop: 12 }}
              onSubmit={(e) => {
                e.preventDefault();
                add.mutate();
              }}
            >
              <Field label="Add a memory" className="grow" error={addError?.fieldError("text")}>
                <input required value={note} onChange={(e) => setNote(e.target.value)} />
              </Field>
              <Button type="submit" busy={add.isPending}>
                Save
              </Button>
            </form>
          )}
          {add.error && !addError?.problem.errors && <ErrorBox error={add.error} />}
        </Card>
      )}
      <Dialog open={confirm} onClose={() => setConfirm(false)} title={`Erase everything about ${subject}?`}>
        <p>Everything stored about this subject is deleted for good (the right to be forgotten): memories, conversation threads, compactions, the contents of their runs and cached context.</p>
        <ErrorBox error={erase.error} />
        <div className="actions">
          <Button variant="danger" busy={erase.isPending} onClick={() => erase.mutate()}>
            Erase
          </Button>
          <Button onClick={() => setConfirm(false)}>Cancel</Button>
        </div>
      </Dialog>
    </div>
  );
}

export default function MemoryPage() {
  return (
    <Suspense fallback={<Loading />}>
      <Memory />
    </Suspense>
  );
}
