"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, Time } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";

export default function SecretsPage() {
  const canWrite = useCan("secrets:write");
  const queries = useQueryClient();
  const notify = useToast();
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const secrets = useQuery({ queryKey: ["secrets"], queryFn: () => call(api.GET("/v1/secrets", { params: { query: { limit: 200 } } })) });
  const save = useMutation({
    mutationFn: () => call(api.POST("/v1/secrets", { body: { name, value } })),
    onSuccess: () => {
      notify(`Secret ${name} saved`);
      setName("");
      setValue("");
      void queries.invalidateQueries({ queryKey: ["secrets"] });
    },
  });
  const remove = useMutation({
    mutationFn: (secret: string) => call(api.DELETE("/v1/secrets/{name}", { params: { path: { name: secret } } })),
    onSuccess: () => {
      notify("Secret deleted");
      void queries.invalidateQueries({ queryKey: ["secrets"] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  const invalid = save.error instanceof ApiError ? save.error : null;
  return (
    <div className="stack">
      {canWrite && (
        <Card title="Add or replace a secret">
          <form className="row" onSubmit={submit}>
            <Field label="Name" error={invalid?.fieldError("name")}>
              <input required value={name} onChange={(e) => setName(e.target.value)} placeholder="openai_key" />
            </Field>
            <Field label="Value" hint="Write-only: it is never shown again." error={invalid?.fieldError("value")}>
              <input type="password" required value={value} onChange={(e) => setValue(e.target.value)} autoComplete="off" />
            </Field>
            <Button type="submit" variant="primary" busy={save.isPending}>
              Save secret
            </Button>
          </form>
          {save.error && !invalid?.problem.errors && <ErrorBox error={save.error} />}
        </Card>
      )}
      <ErrorBox error={secrets.error ?? remove.error} />
      {secrets.isPending ? (
        <Loading />
      ) : secrets.data?.items.length ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Secrets">
          <table>
            <caption className="sr-only">Secrets</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Updated</th>
                {canWrite && (
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {secrets.data.items.map((s) => (
                <tr key={s.name}>
                  <td className="mono">{s.name}</td>
                  <td>
                    <Time iso={s.updated_at} />
                  </td>
                  {canWrite && (
                    <td>
                      <Button size="sm" variant="danger" onClick={() => remove.mutate(s.name)} aria-label={`Delete secret ${s.name}`}>
                        Delete
                      </Button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty>No secrets.</Empty>
      )}
    </div>
  );
}
