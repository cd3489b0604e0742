import { Badge } from "@/components/ui/Badge";
import type { StreamState } from "@/lib/events";

const LABELS: Record<StreamState, string> = {
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting…",
  ended: "stream ended",
};

export function LiveBadge({ state }: { state: StreamState }) {
  return (
    <span aria-live="polite">
      <Badge tone={state === "live" ? "ok" : state === "reconnecting" ? "warn" : "neutral"} live={state === "live"}>
        {LABELS[state]}
      </Badge>
    </span>
  );
}
