"""CPU time of the stack's processes, read from ``/proc`` (Linux), to charge a benchmark side per run.

A service counts with its live descendants (PostgreSQL backends, the Temporal binary under its
launcher) and the CPU of descendants that already exited and were reaped (``cutime``/``cstime``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return int(fields[1]), sum(int(v) for v in fields[11:15]) / _TICKS


def _tree_seconds(root: int, table: Mapping[int, tuple[int, float]]) -> float:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def snapshot(services: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, plus this process (``bench``)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            table[int(entry)] = stat
    seconds = {name: _tree_seconds(pid, table) for name, pid in services.items()}
    seconds["bench"] = sum(os.times()[:2])  # the load generator (and the baselines' worker)
    return seconds


@dataclass
class CpuLedger:
    """CPU seconds and run counts per benchmark side, per service."""

    services: Mapping[str, int]
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def charge(self, side: str, runs: int) -> Iterator[None]:
        """Charge the CPU every service spends inside the block to ``side``, for ``runs`` runs."""
        before = snapshot(self.services)
        yield
        after = snapshot(self.services)
        spent = self.seconds.setdefault(side, {})
        for name, value in after.items():
            spent[name] = spent.get(name, 0.0) + value - before.get(name, 0.0)
        self.runs[side] = self.runs.get(side, 0) + runs

    def per_run_ms(self, side: str) -> dict[str, float]:
        """Milliseconds of CPU per run of ``side``, per service."""
        return {name: 1000 * value / self.runs[side] for name, value in self.seconds[side].items()}

    def table(self) -> str:
        """One row per side: CPU ms per run of each service and the total."""
        names = sorted({name for spent in self.seconds.values() for name in spent})
        head = f"{'cpu ms/run':<10} " + " ".join(f"{n:>14}" for n in names) + f" {'total':>8}"
        rows = [head]
        for side in self.seconds:
            ms = self.per_run_ms(side)
            cells = " ".join(f"{ms.get(n, 0.0):>14.1f}" for n in names)
            rows.append(f"{side:<10} {cells} {sum(ms.values()):>8.1f}")
        return "\n".join(rows)
