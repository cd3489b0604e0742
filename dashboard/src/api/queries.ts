"use client";
/** Queries several pages share. */
import { useQuery } from "@tanstack/react-query";

import { api, call } from "./client";
import type { Agent } from "./types";

/** The tenant's agents (first 200), for names and pickers. */
export function useAgents(enabled = true) {
  return useQuery({
    queryKey: ["agents", "all"],
    queryFn: () => call(api.GET("/v1/agents", { params: { query: { limit: 200 } } })),
    enabled,
    staleTime: 30_000,
  });
}

export function agentNames(agents: Agent[] | undefined): Map<string, string> {
  return new Map((agents ?? []).map((a) => [a.id, a.name]));
}
