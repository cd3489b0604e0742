"""``aimpact up`` says what it is doing: each start phase as it happens."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from cli.progress import StartProgress
from workers.embedded.stack import StackProcess

PHASES = (
    "Starting PostgreSQL",
    "Starting Redis",
    "Starting Temporal",
    "Applying database migrations",
    "Seeding the admin and the demo tenant (first start only)",
    "Starting the agents worker",
    "Starting the API",
)


def test_the_stack_printed_each_phase_in_order_as_plain_lines(stack: StackProcess) -> None:
    printed = [line for line in (stack.home / "up.log").read_text().splitlines() if not line.startswith("{")]
    first_start = printed[: printed.index(next(line for line in printed if "AImPact is up" in line))]

    assert first_start[0] == "Creating the PostgreSQL database (initdb) ..."
    assert first_start[1].startswith("Creating the PostgreSQL database (initdb): done (")
    started = [line.removesuffix(" ...") for line in first_start if line.endswith(" ...")]
    done = [line.split(": done (")[0] for line in first_start if ": done (" in line]
    assert [p for p in started if p in PHASES] == list(PHASES)
    assert [p for p in done if p in PHASES] == list(PHASES)
    for line in first_start:
        if ": done (" in line:
            assert re.search(r": done \(\d+\.\d s\)$", line), line


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=120, color_system=None), out


def test_plain_lines_say_when_a_phase_starts_ends_or_fails() -> None:
    console, out = _console(terminal=False)
    progress = StartProgress(console)
    with progress.phase("Starting Redis"):
        pass
    with pytest.raises(RuntimeError), progress.phase("Starting Temporal"):
        raise RuntimeError("no")

    lines = out.getvalue().splitlines()
    assert lines[0] == "Starting Redis ..."
    assert re.fullmatch(r"Starting Redis: done \(\d+\.\d s\)", lines[1])
    assert lines[2] == "Starting Temporal ..."
    assert re.fullmatch(r"Starting Temporal: failed \(\d+\.\d s\)", lines[3])


def test_a_terminal_gets_a_status_line_then_a_mark_per_phase() -> None:
    console, out = _console(terminal=True)
    progress = StartProgress(console)
    with progress.phase("Starting Redis"):
        pass
    with pytest.raises(RuntimeError), progress.phase("Starting [the] API"):
        raise RuntimeError("no")

    text = out.getvalue()
    assert "Starting Redis…" in text  # the live status while it runs
    assert re.search(r"✓ Starting Redis \d+\.\d s", text)
    assert re.search(r"✗ Starting \[the\] API \d+\.\d s", text)  # titles are text, not markup
