import { diffLines } from "@/lib/diff";

/** Lines removed and added between two texts; the sign is in the text, the colour repeats it. */
export function Diff({ before, after, label }: { before: string; after: string; label: string }) {
  const lines = diffLines(before, after);
  const changed = lines.filter((l) => l.kind !== "same").length;
  return (
    <div>
      <p className="muted small">{changed === 0 ? "No differences." : `${changed} changed line${changed === 1 ? "" : "s"}.`}</p>
      <div className="diff" role="region" aria-label={label} tabIndex={0}>
        {lines.map((line, i) => (
          <div key={i} className={line.kind === "same" ? "" : line.kind}>
            {line.kind === "add" ? "+ " : line.kind === "del" ? "- " : "  "}
            {line.text}
          </div>
        ))}
      </div>
    </div>
  );
}
