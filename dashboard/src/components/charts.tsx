"use client";
/** Charts (recharts): candidates' scores with their intervals, arms' P(best), cost per day and agent. */
import {
  Bar,
  BarChart,
  CartesianGrid,
  ErrorBar,
  Legend,
  ResponsiveContainer,
  Scatter,
  ScatterChart,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";

const PALETTE = ["#2f6fe4", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#e67700", "#5c940d"];
const AXIS = { fontSize: 12, fill: "var(--muted)" };

export type ScorePoint = { label: string; score: number; lo: number; hi: number; highlight?: boolean };

/** Each candidate's score with its 95% interval as error bars. */
export function ScoresChart({ points, label }: { points: ScorePoint[]; label: string }) {
  const data = points.map((p, i) => ({ ...p, x: i, err: [p.score - p.lo, p.hi - p.score] }));
  return (
    <figure className="chart" aria-label={label} style={{ margin: 0 }}>
      <ResponsiveContainer width="100%" height="100%">
        <ScatterChart margin={{ top: 10, right: 20, bottom: 10, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
          <XAxis
            type="number"
            dataKey="x"
            domain={[-0.5, Math.max(points.length - 0.5, 0.5)]}
            ticks={data.map((d) => d.x)}
            tickFormatter={(x: number) => data[x]?.label ?? ""}
            tick={AXIS}
          />
          <YAxis type="number" dataKey="score" domain={[0, 1]} tick={AXIS} />
          <Tooltip
            formatter={(value) => (typeof value === "number" ? value.toFixed(3) : String(value))}
            labelFormatter={() => ""}
            contentStyle={{ background: "var(--surface)", border: "1px solid var(--border)", color: "var(--text)" }}
          />
          <Scatter name="score" data={data} fill="var(--bar)">
            <ErrorBar dataKey="err" width={6} strokeWidth={2} stroke="var(--muted)" direction="y" />
          </Scatter>
        </ScatterChart>
      </ResponsiveContainer>
      <figcaption className="sr-only">
        {points.map((p) => `${p.label}: ${p.score.toFixed(3)} [${p.lo.toFixed(3)}, ${p.hi.toFixed(3)}]`).join("; ")}
      </figcaption>
    </figure>
  );
}

export type BarDatum = { label: string } & Record<string, number | string>;

/** Bars of one or several series (stacked), e.g. cost per day and agent. */
export function BarsChart({ data, series, label, stacked = false, format }: { data: BarDatum[]; series: { key: string; name: string }[]; label: string; stacked?: boolean; format?: (v: number) => string }) {
  return (
    <figure className="chart" aria-label={label} style={{ margin: 0 }}>
      <ResponsiveContainer width="100%" height="100%">
        <BarChart data={data} margin={{ top: 10, right: 20, bottom: 10, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
          <XAxis dataKey="label" tick={AXIS} />
          <YAxis tick={AXIS} tickFormatter={format} />
          <Tooltip
            formatter={(value) => (typeof value === "number" && format ? format(value) : String(value))}
            contentStyle={{ background: "var(--surface)", border: "1px solid var(--border)", color: "var(--text)" }}
          />
          {series.length > 1 && <Legend />}
          {series.map((s, i) => (
            <Bar key={s.key} dataKey={s.key} name={s.name} stackId={stacked ? "all" : undefined} fill={PALETTE[i % PALETTE.length]} />
          ))}
        </BarChart>
      </ResponsiveContainer>
      <figcaption className="sr-only">
        {label}: {data.map((d) => `${d.label}: ${series.map((s) => `${s.name} ${String(d[s.key] ?? 0)}`).join(", ")}`).join("; ")}
      </figcaption>
    </figure>
  );
}
