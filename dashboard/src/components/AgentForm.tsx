"use client";
import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, ApiError, call } from "@/api/client";
import type { AgentConfig, ToolSpec } from "@/api/types";
import { Button } from "@/components/ui/Button";
import { ErrorBox } from "@/components/ui/Feedback";
import { Field } from "@/components/ui/Field";

type Props = {
  initial?: AgentConfig;
  submitLabel: string;
  busy: boolean;
  error: unknown;
  /** Shown for edits: whether the new version becomes current. */
  promoteOption?: boolean;
  onSubmit: (config: AgentConfig, promote: boolean) => void;
  onCancel?: () => void;
};

const PROVIDERS = ["local", "openai", "anthropic"] as const;
type Provider = (typeof PROVIDERS)[number];

function toolName(tool: string | ToolSpec): string {
  return typeof tool === "string" ? tool : tool.name;
}

/** Create an agent, or edit one (every save is a new immutable version). */
export function AgentForm({ initial, submitLabel, busy, error, promoteOption = false, onSubmit, onCancel }: Props) {
  const tools = useQuery({ queryKey: ["tools"], queryFn: () => call(api.GET("/v1/tools", { params: { query: { limit: 200 } } })) });
  const [name, setName] = useState(initial?.name ?? "");
  const [instructions, setInstructions] = useState(initial?.instructions ?? "You are a helpful assistant.");
  const [provider, setProvider] = useState<Provider>(initial?.model?.provider ?? "local");
  const [modelName, setModelName] = useState(initial?.model?.name ?? "local-echo");
  const [baseUrl, setBaseUrl] = useState(initial?.model?.base_url ?? "");
  const [secret, setSecret] = useState(initial?.model?.api_key_secret ?? "");
  const [params, setParams] = useState(JSON.stringify(initial?.model?.params ?? {}, null, 2));
  const [paramsError, setParamsError] = useState<string | null>(null);
  const initialTools = new Map((initial?.tools ?? []).map((t) => [toolName(t), typeof t === "string" ? { name: t } : t]));
  const [chosen, setChosen] = useState<Map<string, ToolSpec>>(initialTools);
  const [memory, setMemory] = useState(initial?.memory?.enabled ?? false);
  const [promote, setPromote] = useState(true);
  const invalid = error instanceof ApiError ? error : null;

  const toggle = (tool: string, on: boolean) => {
    const next = new Map(chosen);
    if (on) next.set(tool, chosen.get(tool) ?? { name: tool });
    else next.delete(tool);
    setChosen(next);
  };
  const setApproval = (tool: string, on: boolean) => {
    const next = new Map(chosen);
    next.set(tool, { ...(chosen.get(tool) ?? { name: tool }), requires_approval: on });
    setChosen(next);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(params || "{}") as Record<string, unknown>;
      setParamsError(null);
    } catch {
      setParamsError("not valid JSON");
      return;
    }
    onSubmit(
      {
        name,
        instructions,
        model: { provider, name: modelName, base_url: baseUrl || null, api_key_secret: secret || null, params: parsed },
        tools: [...chosen.values()],
        memory: { ...initial?.memory, enabled: memory },
        double_texting: initial?.double_texting,
        parallel_tool_calls: initial?.parallel_tool_calls,
      },
      promote,
    );
  };
  const available = tools.data?.items ?? [];
  return (
    <form className="stack" onSubmit={submit} aria-label={submitLabel}>
      <div className="grid-2">
        <Field label="Name" error={invalid?.fieldError("name")}>
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
        <div className="row">
          <Field label="Provider" error={invalid?.fieldError("model.provider")}>
            <select value={provider} onChange={(e) => setProvider(e.target.value as Provider)}>
              {PROVIDERS.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </Field>
          <Field label="Model" error={invalid?.fieldError("model.name")} className="grow">
            <input required value={modelName} onChange={(e) => setModelName(e.target.value)} />
          </Field>
        </div>
      </div>
      <Field label="Instructions" error={invalid?.fieldError("instructions")}>
        <textarea rows={6} value={instructions} onChange={(e) => setInstructions(e.target.value)} />
      </Field>
      {provider !== "local" && (
        <div className="grid-2">
          <Field label="Base URL (optional)" error={invalid?.fieldError("model.base_url")}>
            <input value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} placeholder="https://api.openai.com/v1" />
          </Field>
          <Field label="API key secret (name)" hint="A tenant secret holding the provider's key." error={invalid?.fieldError("model.api_key_secret")}>
            <input value={secret} onChange={(e) => setSecret(e.target.value)} />
          </Field>
        </div>
      )}
      <Field label="Model parameters (JSON)" hint='temperature, max_tokens, … ({"latency_ms": 500} slows the local model)' error={paramsError ?? invalid?.fieldError("model.params")}>
        <textarea rows={3} value={params} onChange={(e) => setParams(e.target.value)} />
      </Field>
      <fieldset className="card" style={{ padding: 12 }}>
        <legend>Tools</legend>
        {invalid?.fieldError("tools") && <p className="error">{invalid.fieldError("tools")}</p>}
        <div className="stack" style={{ gap: 6 }}>
          {available.map((tool) => (
            <div key={tool.name} className="row" style={{ alignItems: "center" }}>
              <label className="check">
                <input type="checkbox" checked={chosen.has(tool.name)} onChange={(e) => toggle(tool.name, e.target.checked)} />
                <span className="mono">{tool.name}</span>
              </label>
              <span className="muted small">{tool.description}</span>
              {chosen.has(tool.name) && (
                <label className="check small">
                  <input type="checkbox" checked={chosen.get(tool.name)?.requires_approval ?? false} onChange={(e) => setApproval(tool.name, e.target.checked)} />
                  requires approval
                </label>
              )}
            </div>
          ))}
        </div>
      </fieldset>
      <label className="check">
        <input type="checkbox" checked={memory} onChange={(e) => setMemory(e.target.checked)} />
        Long-term memory (recall and remember per subject)
      </label>
      {promoteOption && (
        <label className="check">
          <input type="checkbox" checked={promote} onChange={(e) => setPromote(e.target.checked)} />
          Make the new version current (new runs use it)
        </label>
      )}
      {Boolean(error) && <ErrorBox error={error} />}
      <div className="actions">
        <Button type="submit" variant="primary" busy={busy}>
          {submitLabel}
        </Button>
        {onCancel && <Button onClick={onCancel}>Cancel</Button>}
      </div>
    </form>
  );
}
