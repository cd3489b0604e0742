"use client";
import { layers, type GraphStep } from "@/lib/graph";

type Props = {
  steps: GraphStep[];
  waves?: string[][] | null;
  /** Status by step id (a run's view). */
  status?: Map<string, string>;
  /** Validation errors by step id. */
  errors?: Map<string, string[]>;
  selected?: string | null;
  onSelect?: (id: string) => void;
  label: string;
};

const W = 168;
const H = 50;
const GAP_X = 56;
const GAP_Y = 16;
const PAD = 12;

/** The definition as a layered graph: steps left to right by what they need; errors and statuses on their step. */
export function PipelineGraph({ steps, waves, status, errors, selected, onSelect, label }: Props) {
  const columns = layers(steps, waves);
  const position = new Map<string, { x: number; y: number }>();
  columns.forEach((column, c) =>
    column.forEach((id, r) => position.set(id, { x: PAD + c * (W + GAP_X), y: PAD + r * (H + GAP_Y) })),
  );
  const width = PAD * 2 + Math.max(1, columns.length) * (W + GAP_X) - GAP_X;
  const height = PAD * 2 + Math.max(1, ...columns.map((c) => c.length)) * (H + GAP_Y) - GAP_Y;
  const byId = new Map(steps.map((s) => [s.id, s]));
  return (
    <div className="graph">
      <svg width={width} height={height} role="group" aria-label={label}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" fill="currentColor" className="muted" />
          </marker>
        </defs>
        {steps.flatMap((step) =>
          step.needs.flatMap((need) => {
            const from = position.get(need);
            const to = position.get(step.id);
            if (!from || !to) return [];
            const x1 = from.x + W;
            const y1 = from.y + H / 2;
            const x2 = to.x;
            const y2 = to.y + H / 2;
            const mid = (x1 + x2) / 2;
            return [<path key={`${need}->${step.id}`} className="edge" d={`M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 - 2} ${y2}`} markerEnd="url(#arrow)" />];
          }),
        )}
        {[...position.entries()].map(([id, { x, y }]) => {
          const step = byId.get(id);
          const state = status?.get(id);
          const problems = errors?.get(id) ?? [];
          const classes = ["node", state && `s-${state}`, problems.length && "error"].filter(Boolean).join(" ");
          const title = id.length > 22 ? `${id.slice(0, 21)}…` : id;
          const sub = `${step?.type ?? "?"}${state ? ` · ${state.replace("_", " ")}` : ""}${problems.length ? ` · ⚠ ${problems.length}` : ""}`;
          const name = `${title} ${sub}${problems.length ? ` (${problems.length} error${problems.length > 1 ? "s" : ""})` : ""}`;
          return (
            <g
              key={id}
              className={classes}
              transform={`translate(${x},${y})`}
              tabIndex={onSelect ? 0 : undefined}
              role={onSelect ? "button" : "img"}
              aria-label={name}
              aria-pressed={onSelect ? selected === id : undefined}
              onClick={onSelect ? () => onSelect(id) : undefined}
              onKeyDown={
                onSelect
                  ? (e) => {
                      if (e.key === "Enter" || e.key === " ") {
                        e.preventDefault();
                        onSelect(id);
                      }
                    }
                  : undefined
              }
              style={onSelect ? { cursor: "pointer" } : undefined}
            >
              <rect width={W} height={H} rx={7} strokeWidth={selected === id ? 3 : undefined} />
              <text>
                <tspan x={10} y={20}>
                  {`${title} `}
                </tspan>
                <tspan x={10} y={38} className="sub">
                  {sub}
                </tspan>
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}
