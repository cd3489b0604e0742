"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import { RoleSelect, type Role } from "@/components/RoleSelect";
import { Button } from "@/components/ui/Button";
import { Dialog } from "@/components/ui/Dialog";
import { Empty, ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, CopyButton, Time } from "@/components/ui/Misc";
import { useMe } from "@/lib/auth";

export default function ApiKeysPage() {
  const me = useMe();
  const queries = useQueryClient();
  const notify = useToast();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [shown, setShown] = useState<{ name: string; key: string } | null>(null);
  const keys = useQuery({ queryKey: ["api-keys"], queryFn: () => call(api.GET("/v1/api-keys", { params: { query: { limit: 200 } } })) });
  const create = useMutation({
    mutationFn: () => call(api.POST("/v1/api-keys", { body: { name, role } })),
    onSuccess: (created) => {
      setShown({ name: created.name, key: created.key });
      setName("");
      void queries.invalidateQueries({ queryKey: ["api-keys"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => call(api.DELETE("/v1/api-keys/{key_id}", { params: { path: { key_id: id } } })),
    onSuccess: () => {
      notify("Key revoked");
      void queries.invalidateQueries({ queryKey: ["api-keys"] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const invalid = create.error instanceof ApiError ? create.error : null;
  return (
    <div className="stack">
      <Card title="New API key">
        <form className="row" onSubmit={submit}>
          <Field label="Name" error={invalid?.fieldError("name")}>
            <input required value={name} onChange={(e) => setName(e.target.value)} placeholder="backend" />
          </Field>
          <RoleSelect value={role} onChange={setRole} myRole={me.role} error={invalid?.fieldError("role")} />
          <Button type="submit" variant="primary" busy={create.isPending}>
            Create key
          </Button>
        </form>
        {create.error && !invalid?.problem.errors && <ErrorBox error={create.error} />}
      </Card>
      <ErrorBox error={keys.error ?? revoke.error} />
      {keys.isPending ? (
        <Loading />
      ) : keys.data?.items.length ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="API keys">
          <table>
            <caption className="sr-only">API keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.items.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td className="mono">{k.prefix}…</td>
                  <td>{k.role}</td>
                  <td>
                    <Time iso={k.created_at} />
                  </td>
                  <td>
                    <Time iso={k.last_used_at} />
                  </td>
                  <td>
                    <Button size="sm" variant="danger" busy={revoke.isPending && revoke.variables === k.id} onClick={() => revoke.mutate(k.id)} aria-label={`Revoke ${k.name}`}>
                      Revoke
                    </Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty>No API keys.</Empty>
      )}
      <Dialog open={shown !== null} onClose={() => setShown(null)} title={`API key ${shown?.name ?? ""}`}>
        <div className="alert alert-info">This is the only time the key is shown: copy it now and keep it secret.</div>
        <code className="block mono" style={{ overflowWrap: "anywhere" }} data-testid="new-key">
          {shown?.key}
        </code>
        <div className="actions">
          {shown && <CopyButton text={shown.key} label="Copy key" />}
          <Button variant="primary" onClick={() => setShown(null)}>
            Done
          </Button>
        </div>
      </Dialog>
    </div>
  );
}
