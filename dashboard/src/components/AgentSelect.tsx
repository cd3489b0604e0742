"use client";
import type { SelectHTMLAttributes } from "react";

import type { Agent } from "@/api/types";

/** The hint of a subject field (runs and voice sessions). */
export const SUBJECT_HINT = "The end user the agent talks to; long-term memory is kept per subject.";

/** Choose one of the tenant's agents (shown with its current version). */
export function AgentSelect({ agents, ...rest }: { agents: Agent[] | undefined } & SelectHTMLAttributes<HTMLSelectElement>) {
  return (
    <select required {...rest}>
      <option value="">Choose an agent…</option>
      {(agents ?? []).map((a) => (
        <option key={a.id} value={a.id}>
          {a.name} (v{a.version})
        </option>
      ))}
    </select>
  );
}
