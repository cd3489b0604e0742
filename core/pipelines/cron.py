"""Five-field cron expressions (``minute hour day-of-month month day-of-week``, UTC), checked before Temporal sees them.

Each field is ``*`` or a comma list of ``N``, ``N-M``, ``*/S``, ``N/S`` and ``N-M/S``;
months may be ``jan``…``dec`` and weekdays ``sun``…``sat`` (``0`` and ``7`` are Sunday).
That is the subset Temporal's cron strings accept the same way. ``Cron.count`` counts the
times a schedule fires in a range, to bound a backfill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)


class CronError(ValueError):
    """The expression is not a five-field cron expression of the supported syntax."""


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the values each field matches."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday (7 folded into 0)."""
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Parse ``text``; raises :class:`CronError` naming the field at fault."""
        parts = text.split()
        if len(parts) != 5:
            fields = "minute hour day-of-month month day-of-week"
            raise CronError(f"a cron expression has 5 fields ({fields}), not {len(parts)}")
        values = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        return cls(
            minutes=values[0],
            hours=values[1],
            days=values[2],
            months=values[3],
            weekdays=frozenset(d % 7 for d in values[4]),
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # cron: two restricted day fields match either way
            return in_month and in_week
        return in_month or in_week

    def count(self, start: datetime, end: datetime, *, cap: int) -> int:
        """Times in ``(start, end]`` the expression matches (minute precision), counting stops past ``cap``."""
        found = 0
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day <= end and found <= cap:
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        moment = day.replace(hour=hour, minute=minute)
                        found += start < moment <= end
            day += timedelta(days=1)
        return found


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    found: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = _number(step_text, name, 1, high) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = _number(a, name, low, high, names), _number(b, name, low, high, names)
            if first > last:
                raise CronError(f"{name}: the range {span} is backwards")
        else:
            first = _number(span, name, low, high, names)
            last = high if step_text else first
        found.update(range(first, last + 1, step))
    return frozenset(found)


def _number(text: str, name: str, low: int, high: int, names: dict[str, int] | None = None) -> int:
    value = (names or {}).get(text.lower())
    if value is None:
        if not text.isdigit():
            raise CronError(f"{name}: {text!r} is not a number" + (" or a name" if names else ""))
        value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value
