"""Start phases of ``aimpact up`` as they happen: a live status on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

from workers.embedded.supervisor import ShutdownRequested


class StartProgress:
    """Reports each phase the supervisor enters (``workers.embedded.supervisor.StartPhases``)."""

    def __init__(self, console: Console):
        self.console = console

    @contextmanager
    def phase(self, title: str) -> Iterator[None]:
        """Show ``title`` while the phase runs, then how it ended and how long it took."""
        began = time.monotonic()
        try:
            if self.console.is_terminal:
                with self.console.status(f"{escape(title)}…"), _logs_above_status():
                    yield
            else:
                self.console.print(f"{title} ...", markup=False, highlight=False, soft_wrap=True)
                yield
        except (ShutdownRequested, KeyboardInterrupt):
            self._line("[yellow]-[/]", title, "stopped", began)
            raise
        except BaseException:
            self._line("[red]✗[/]", title, "failed", began)
            raise
        self._line("[green]✓[/]", title, "done", began)

    def _line(self, mark: str, title: str, outcome: str, began: float) -> None:
        took = f"{time.monotonic() - began:.1f} s"
        if self.console.is_terminal:
            self.console.print(f"{mark} {escape(title)} [dim]{took}[/]", highlight=False)
        else:
            self.console.print(f"{title}: {outcome} ({took})", markup=False, highlight=False, soft_wrap=True)


@contextmanager
def _logs_above_status() -> Iterator[None]:
    """Route log lines through the status display's stderr (it prints them above itself)."""
    handlers = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    previous = [h.setStream(sys.stderr) for h in handlers]
    try:
        yield
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)
