"""What a re-run keeps (``core.pipelines.rerun``) and the cron syntax schedules accept (``core.pipelines.cron``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.contracts.pipelines import StepRecord
from core.pipelines.cron import Cron, CronError
from core.pipelines.rerun import UnknownStepError, plan_rerun, top_level


def _wait(step_id: str, *needs: str, seconds: int = 0) -> dict[str, Any]:
    return {"id": step_id, "type": "wait", "seconds": seconds, "needs": list(needs)}


LINE = {"steps": [_wait("a"), _wait("b", "a"), _wait("c", "b"), _wait("side")]}
DONE = {s: StepRecord(status="completed", output=s) for s in ("a", "b", "c", "side")}


def test_steps_before_from_step_are_kept_with_their_records() -> None:
    plan = plan_rerun(LINE, LINE, "b", DONE)
    assert set(plan.reused) == {"a", "side"}
    assert plan.rerun == {"b", "c"}
    assert (plan.reused["a"].output, plan.reused["a"].reused) == ("a", True)


def test_a_step_not_completed_or_skipped_runs_again_with_what_depends_on_it() -> None:
    records = DONE | {"a": StepRecord(status="failed"), "side": StepRecord(status="skipped")}
    plan = plan_rerun(LINE, LINE, "c", records)
    assert set(plan.reused) == {"side"}
    assert plan.rerun == {"a", "b", "c"}
    unfinished = plan_rerun(LINE, LINE, "c", {k: v for k, v in DONE.items() if k != "side"})
    assert "side" in unfinished.rerun


def test_a_step_changed_or_new_in_the_target_version_runs_again() -> None:
    target = {"steps": [_wait("a", seconds=1), _wait("b", "a"), _wait("c", "b"), _wait("side"), _wait("new")]}
    plan = plan_rerun(target, LINE, "c", DONE)
    assert set(plan.reused) == {"side"}
    assert plan.rerun == {"a", "b", "c", "new"}


def test_from_step_must_be_a_top_level_step_of_the_target() -> None:
    with pytest.raises(UnknownStepError):
        plan_rerun(LINE, LINE, "nope", DONE)
    with pytest.raises(UnknownStepError):
        plan_rerun(LINE, LINE, "m[0]", DONE)


def test_map_items_belong_to_their_map() -> None:
    assert [top_level(s) for s in ("m", "m[3]", "m[3][1]", "a[b")] == ["m", "m", "m", "a[b"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * foo *", "month"),
        ("* * * * 8", "day of week"),
        ("5-1 * * * *", "minute"),
        ("*/0 * * * *", "minute"),
        ("@hourly", "5 fields"),
        ("? * * * *", "minute"),
    ],
)
def test_cron_errors_name_their_field(text: str, field: str) -> None:
    with pytest.raises(CronError, match=field):
        Cron.parse(text)


def test_cron_counts_the_fires_in_a_range() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
    assert Cron.parse("* * * * *").count(start, start + timedelta(minutes=3), cap=100) == 3
    assert Cron.parse("0 9 * * mon-fri").count(start, start + timedelta(days=7), cap=100) == 5
    # the 1st, the 15th or a Sunday (two restricted day fields match either way), after 00:00 on the 1st
    either = Cron.parse("*/15 0-1 1,15 jan SUN").count(start, start + timedelta(days=31), cap=100)
    assert either == 6 * 8 - 1
    assert Cron.parse("* * * * *").count(start, start + timedelta(days=1), cap=100) > 100
