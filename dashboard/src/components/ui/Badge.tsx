import type { ReactNode } from "react";

export type Tone = "ok" | "danger" | "warn" | "info" | "neutral";

const TONES: Record<string, Tone> = {
  completed: "ok",
  succeeded: "ok",
  promoted: "ok",
  running: "info",
  queued: "neutral",
  pending: "neutral",
  waiting: "warn",
  waiting_approval: "warn",
  failed: "danger",
  cancelled: "neutral",
  canceled: "neutral",
  skipped: "neutral",
  stopped: "neutral",
  rejected: "danger",
  approved: "ok",
  open: "info",
  applied: "ok",
  dismissed: "neutral",
  stale: "warn",
  measuring: "info",
  measured: "ok",
  active: "info",
  ended: "neutral",
  silent: "neutral",
  interrupted: "warn",
};

export function Badge({ tone = "neutral", children, live = false }: { tone?: Tone; children: ReactNode; live?: boolean }) {
  return (
    <span className={`badge badge-${tone}${live ? " live" : ""}`}>
      {live && <span className="dot" aria-hidden="true" />}
      {children}
    </span>
  );
}

/** A status word with the colour of its meaning (text carries the meaning; colour only repeats it). */
export function StatusBadge({ status }: { status: string }) {
  const tone = TONES[status] ?? "neutral";
  const live = status === "running" || status === "waiting_approval" || status === "queued" || status === "active";
  return (
    <Badge tone={tone} live={live}>
      {status.replace(/_/g, " ")}
    </Badge>
  );
}
