/** A line diff (longest common subsequence), enough for agent configurations and pipeline definitions. */

export type DiffLine = { kind: "same" | "add" | "del"; text: string };

export function diffLines(before: string, after: string): DiffLine[] {
  const a = before.split("\n");
  const b = after.split("\n");
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ kind: "same", text: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) {
      out.push({ kind: "del", text: a[i++]! });
    } else {
      out.push({ kind: "add", text: b[j++]! });
    }
  }
  while (i < n) out.push({ kind: "del", text: a[i++]! });
  while (j < m) out.push({ kind: "add", text: b[j++]! });
  return out;
}

/** A readable text of an object: one `key: value` line per field, multi-line strings indented. */
export function describe(value: Record<string, unknown>, skip: string[] = []): string {
  return Object.entries(value)
    .filter(([key]) => !skip.includes(key))
    .map(([key, v]) => {
      if (typeof v === "string" && v.includes("\n")) return `${key}:\n${v.split("\n").map((l) => `  ${l}`).join("\n")}`;
      if (typeof v === "object" && v !== null) return `${key}: ${JSON.stringify(v, null, 2)}`;
      return `${key}: ${String(v)}`;
    })
    .join("\n");
}
