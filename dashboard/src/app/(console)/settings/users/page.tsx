"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import { grantable, RoleSelect, type Role } from "@/components/RoleSelect";
import { Button } from "@/components/ui/Button";
import { Empty, ErrorBox, Loading, useToast } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";
import { Card, Time } from "@/components/ui/Misc";
import { useCan, useMe } from "@/lib/auth";

export default function UsersPage() {
  const me = useMe();
  const canManage = useCan("users:manage");
  const queries = useQueryClient();
  const notify = useToast();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const users = useQuery({ queryKey: ["users"], queryFn: () => call(api.GET("/v1/users", { params: { query: { limit: 200 } } })) });
  const refresh = () => void queries.invalidateQueries({ queryKey: ["users"] });
  const create = useMutation({
    mutationFn: () => call(api.POST("/v1/users", { body: { email, password, role } })),
    onSuccess: () => {
      notify(`${email} added`);
      setEmail("");
      setPassword("");
      refresh();
    },
  });
  const change = useMutation({
    mutationFn: ({ id, to }: { id: string; to: Role }) => call(api.PATCH("/v1/users/{user_id}", { params: { path: { user_id: id } }, body: { role: to } })),
    onSuccess: () => {
      notify("Role changed; their sessions were signed out");
      refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => call(api.DELETE("/v1/users/{user_id}", { params: { path: { user_id: id } } })),
    onSuccess: () => {
      notify("User deleted");
      refresh();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const invalid = create.error instanceof ApiError ? create.error : null;
  const mine = grantable(me.role);
  return (
    <div className="stack">
      {canManage && (
        <Card title="Add a user">
          <form className="row" onSubmit={submit}>
            <Field label="Email" error={invalid?.fieldError("email")}>
              <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="off" />
            </Field>
            <Field label="Initial password" error={invalid?.fieldError("password")}>
              <input type="password" required value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
            </Field>
            <RoleSelect value={role} onChange={setRole} myRole={me.role} error={invalid?.fieldError("role")} />
            <Button type="submit" variant="primary" busy={create.isPending}>
              Add user
            </Button>
          </form>
          {create.error && !invalid?.problem.errors && <ErrorBox error={create.error} />}
        </Card>
      )}
      <ErrorBox error={users.error ?? change.error ?? remove.error} />
      {users.isPending ? (
        <Loading />
      ) : users.data?.items.length ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Users">
          <table>
            <caption className="sr-only">Users</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Added</th>
                {canManage && (
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {users.data.items.map((u) => {
                const editable = canManage && u.id !== me.user_id && mine.includes(u.role as Role);
                return (
                  <tr key={u.id}>
                    <td>{u.email}</td>
                    <td>
                      {editable ? (
                        <select aria-label={`Role of ${u.email}`} value={u.role} onChange={(e) => change.mutate({ id: u.id, to: e.target.value as Role })}>
                          {mine.map((r) => (
                            <option key={r}>{r}</option>
                          ))}
                        </select>
                      ) : (
                        u.role
                      )}
                    </td>
                    <td>
                      <Time iso={u.created_at} />
                    </td>
                    {canManage && (
                      <td>
                        {editable && (
                          <Button size="sm" variant="danger" onClick={() => remove.mutate(u.id)} aria-label={`Delete ${u.email}`}>
                            Delete
                          </Button>
                        )}
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty>No users.</Empty>
      )}
    </div>
  );
}
