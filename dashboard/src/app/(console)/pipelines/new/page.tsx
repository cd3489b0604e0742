"use client";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";

import { api, ApiError, call } from "@/api/client";
import { DefinitionEditor } from "@/components/DefinitionEditor";
import { Field } from "@/components/ui/Field";
import { Card, PageHeader } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";

const EXAMPLE = {
  inputs: { type: "object", properties: { question: { type: "string" } }, required: ["question"] },
  steps: [
    { id: "check", type: "approval", prompt: "Go ahead?" },
    { id: "compute", type: "tool", tool: "calculator", args: { expression: "6 * 7" }, needs: ["check"] },
  ],
  output: "steps.compute.output",
};

export default function NewPipelinePage() {
  const router = useRouter();
  const queries = useQueryClient();
  const canWrite = useCan("pipelines:write");
  const [name, setName] = useState("");
  const create = useMutation({
    mutationFn: (definition: Record<string, unknown>) => call(api.POST("/v1/pipelines", { body: { name, definition } })),
    onSuccess: (pipeline) => {
      void queries.invalidateQueries({ queryKey: ["pipelines"] });
      router.push(`/pipelines/detail?id=${pipeline.id}`);
    },
  });
  if (!canWrite) return <p className="muted">Your role cannot create pipelines.</p>;
  const invalid = create.error instanceof ApiError ? create.error : null;
  return (
    <>
      <PageHeader crumbs={[{ href: "/pipelines", label: "Pipelines" }]} title="New pipeline" />
      <Card>
        <DefinitionEditor initial={EXAMPLE} saveLabel="Create pipeline" saving={create.isPending} saveError={create.error} onSave={(d) => create.mutate(d)} onCancel={() => router.push("/pipelines")}>
          <Field label="Name" error={invalid?.fieldError("name")}>
            <input required value={name} onChange={(e) => setName(e.target.value)} />
          </Field>
        </DefinitionEditor>
      </Card>
    </>
  );
}
