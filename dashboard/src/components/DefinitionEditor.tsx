"use client";
import { useMutation } from "@tanstack/react-query";
import { useMemo, useState } from "react";

import { api, ApiError, call } from "@/api/client";
import type { Validation } from "@/api/types";
import { PipelineGraph } from "@/components/PipelineGraph";
import { Button } from "@/components/ui/Button";
import { ErrorBox } from "@/components/ui/Feedback";
import { errorsByStep, stepsOf } from "@/lib/graph";

type Props = {
  initial: unknown;
  saveLabel: string;
  saving: boolean;
  saveError: unknown;
  onSave: (definition: Record<string, unknown>) => void;
  onCancel?: () => void;
  children?: React.ReactNode;
};

function parse(text: string): { value: Record<string, unknown> | null; error: string | null } {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) return { value: null, error: "a definition is a JSON object" };
    return { value: value as Record<string, unknown>, error: null };
  } catch (e) {
    return { value: null, error: e instanceof Error ? e.message : "not JSON" };
  }
}

/** Edit a definition as JSON, validate it against the tenant's agents and tools, see errors at their step. */
export function DefinitionEditor({ initial, saveLabel, saving, saveError, onSave, onCancel, children }: Props) {
  const [text, setText] = useState(JSON.stringify(initial ?? { steps: [] }, null, 2));
  const [selected, setSelected] = useState<string | null>(null);
  const parsed = useMemo(() => parse(text), [text]);
  const steps = useMemo(() => stepsOf(parsed.value), [parsed.value]);
  const validate = useMutation({
    mutationFn: (definition: Record<string, unknown>) => call(api.POST("/v1/pipelines/validate", { body: { definition } })),
  });
  const result: Validation | undefined = validate.data;
  const saveProblems = saveError instanceof ApiError ? (saveError.problem.errors ?? []) : [];
  const problems = [...(result?.errors ?? []), ...saveProblems];
  const byStep = errorsByStep(problems, steps);
  const shown = selected ? byStep.get(selected) : null;
  return (
    <div className="stack">
      <div className="grid-2">
        <div className="field">
          <label htmlFor="definition">Definition (JSON)</label>
          <textarea
            id="definition"
            rows={22}
            value={text}
            spellCheck={false}
            aria-invalid={parsed.error ? true : undefined}
            aria-describedby="definition-status"
            onChange={(e) => {
              setText(e.target.value);
              validate.reset();
            }}
          />
          <span id="definition-status" className={parsed.error ? "error" : "hint"}>
            {parsed.error ?? `${steps.length} step${steps.length === 1 ? "" : "s"}`}
          </span>
        </div>
        <div className="stack">
          <PipelineGraph steps={steps} waves={result?.plan ? ((result.plan as { waves?: string[][] }).waves ?? null) : null} errors={byStep} selected={selected} onSelect={setSelected} label="Pipeline graph (preview)" />
          {result?.valid && (
            <div className="alert alert-ok" role="status">
              Valid. Estimated cost per run: ${String((result.plan as { cost_estimate_usd?: number } | null)?.cost_estimate_usd ?? 0)}
            </div>
          )}
          {problems.length > 0 && (
            <div className="alert alert-error" role="alert">
              {problems.length} problem{problems.length > 1 ? "s" : ""}:
              <ul>
                {[...byStep.entries()].map(([step, messages]) => (
                  <li key={step}>
                    {step ? (
                      <button type="button" className="btn btn-ghost btn-sm" onClick={() => setSelected(step)}>
                        step {step}
                      </button>
                    ) : (
                      "definition"
                    )}
                    : {messages.join("; ")}
                  </li>
                ))}
              </ul>
            </div>
          )}
          {shown && (
            <p className="small">
              <strong>{selected}</strong>: {shown.join("; ")}
            </p>
          )}
        </div>
      </div>
      {children}
      {saveError !== null && saveError !== undefined && saveProblems.length === 0 && <ErrorBox error={saveError} />}
      <ErrorBox error={validate.error} />
      <div className="actions">
        <Button disabled={!parsed.value} busy={validate.isPending} onClick={() => parsed.value && validate.mutate(parsed.value)}>
          Validate
        </Button>
        <Button variant="primary" disabled={!parsed.value} busy={saving} onClick={() => parsed.value && onSave(parsed.value)}>
          {saveLabel}
        </Button>
        {onCancel && <Button onClick={onCancel}>Cancel</Button>}
      </div>
    </div>
  );
}
