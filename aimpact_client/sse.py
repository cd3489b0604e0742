"""Server-Sent Events: a decoder of the ``text/event-stream`` lines, free of I/O, and the events it yields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

RUN_CLOSED = "run.closed"
"""A run's last event: its stream ends there."""
TURN_END_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled"})
"""The outcome of one turn (``turn`` in the data); a multi-turn run goes on after it."""


@dataclass(frozen=True)
class Event:
    """One event of a run: its id (send it back as ``Last-Event-ID`` to resume), type and data."""

    id: str | None
    event: str
    data: Any
    """The ``data:`` field decoded as JSON (the raw text when it is not JSON)."""

    @property
    def turn(self) -> int | None:
        """The turn the event names (a turn's start and end do; a step's events do not)."""
        turn = self.data.get("turn") if isinstance(self.data, dict) else None
        return turn if isinstance(turn, int) else None


class SSEDecoder:
    """Feed it the stream's lines one at a time; it returns each event as its blank line completes it.

    Follows the WHATWG event-stream rules: ``:`` starts a comment (keep-alives), a field
    without a colon has an empty value, one space after the colon is dropped, ``data:``
    lines join with newlines, ``id:`` persists across events, ``retry:`` sets the reconnect delay.
    """

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self.retry_s = 1.0
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """Take one line (without its line break); the event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self.last_id = value or None
        elif field == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None

    def _dispatch(self) -> Event | None:
        data, event = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        text = "\n".join(data)
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            decoded = text
        return Event(id=self.last_id, event=event, data=decoded)
