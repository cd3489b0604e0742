/** Layers of a pipeline's DAG (a step sits one layer after the last step it needs), and error pointers by step. */

export type GraphStep = { id: string; type: string; needs: string[] };

type RawStep = { id?: unknown; type?: unknown; needs?: unknown };

/** The steps of a definition, read defensively (the definition being edited may be invalid). */
export function stepsOf(definition: unknown): GraphStep[] {
  const steps = (definition as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return [];
  return steps.map((raw: RawStep, i) => ({
    id: typeof raw?.id === "string" && raw.id ? raw.id : `#${i}`,
    type: typeof raw?.type === "string" ? raw.type : "?",
    needs: Array.isArray(raw?.needs) ? raw.needs.filter((n): n is string => typeof n === "string") : [],
  }));
}

/** Columns left to right: the plan's waves when there is one, else the longest path to each step (cycles cut). */
export function layers(steps: GraphStep[], waves?: string[][] | null): string[][] {
  if (waves && waves.length) return waves;
  const byId = new Map(steps.map((s) => [s.id, s]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const needs = byId.get(id)?.needs.filter((n) => byId.has(n)) ?? [];
    const d = needs.length ? Math.max(...needs.map(visit)) + 1 : 0;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  steps.forEach((s) => visit(s.id));
  const out: string[][] = [];
  for (const s of steps) (out[depth.get(s.id) ?? 0] ??= []).push(s.id);
  return out.filter(Boolean);
}

/** Validation errors (`/steps/2/agent_id`, `/definition/steps/2/…`) grouped by the id of the step they point into. */
export function errorsByStep(errors: { field: string; message: string }[], steps: GraphStep[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const error of errors) {
    const match = /^(?:\/definition)?\/steps\/(\d+)(\/.*)?$/.exec(error.field);
    const step = match ? steps[Number(match[1])] : undefined;
    const key = step ? step.id : "";
    const where = match?.[2] ? `${match[2].slice(1)}: ` : "";
    out.set(key, [...(out.get(key) ?? []), `${where}${error.message}`]);
  }
  return out;
}
