"use client";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";

import { api, call } from "@/api/client";
import type { AgentConfig } from "@/api/types";
import { AgentForm } from "@/components/AgentForm";
import { Card, PageHeader } from "@/components/ui/Misc";
import { useCan } from "@/lib/auth";

export default function NewAgentPage() {
  const router = useRouter();
  const queries = useQueryClient();
  const canWrite = useCan("agents:write");
  const create = useMutation({
    mutationFn: (body: AgentConfig) => call(api.POST("/v1/agents", { body })),
    onSuccess: (agent) => {
      void queries.invalidateQueries({ queryKey: ["agents"] });
      router.push(`/agents/detail?id=${agent.id}`);
    },
  });
  return (
    <>
      <PageHeader crumbs={[{ href: "/agents", label: "Agents" }]} title="New agent" />
      {canWrite ? (
        <Card>
          <AgentForm submitLabel="Create agent" busy={create.isPending} error={create.error} onSubmit={(config) => create.mutate(config)} onCancel={() => router.push("/agents")} />
        </Card>
      ) : (
        <p className="muted">Your role cannot create agents.</p>
      )}
    </>
  );
}
