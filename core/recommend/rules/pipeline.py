"""Pipeline rules: the steps that fail most, steps that could run concurrently, maps held back by their concurrency.

- ``pipeline.failing_step``: an agent, tool or sub-pipeline step whose failure rate's lower
  bound is at least ``step_failure_rate`` → retry it (two more attempts, a backoff of at least
  2 s); not when the retries it already has never succeed.
- ``pipeline.concurrency``: step B ``needs`` step A but reads nothing of A's (no ``steps.A`` in
  any of B's fields), A is no approval or wait and has no ``if``, and B does not wait for A
  through its other needs → drop A from B's ``needs``. The saving of a run is taken as the
  shorter of the two steps (they overlap instead of following each other); a finding needs the
  median saving's lower bound to be at least ``min_saving_s``.
- ``pipeline.slow_map``: a map whose runs usually have more items than its ``max_concurrency``
  → double it (at most 50); a run's saving is the map's duration times the share of item
  rounds saved.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from core.contracts.recommend import Finding, RecommendationKind
from core.recommend.findings import Window, evidence_of, finding, gain, metric, pct, pipeline_action, pipeline_target
from core.recommend.pipeline_history import PipelineState, PipelineStepGroup, RunSteps
from core.recommend.stats import Estimate, per_thousand, quantile, wilson
from core.recommend.thresholds import Thresholds

RETRIED_TYPES = ("agent", "tool", "pipeline")
ORDERING_TYPES = ("approval", "wait")
"""A ``needs`` on these is a control dependency (a person decides, a time passes) even without data."""
MAX_ATTEMPTS = 10
MAX_MAP_CONCURRENCY = 50
DEFAULT_MAP_CONCURRENCY = 10
ORDER_STATISTIC = "order-statistic interval of the median (distribution-free)"


def top_steps(state: PipelineState) -> dict[str, dict[str, Any]]:
    """The definition's top-level steps by id."""
    return {step["id"]: step for step in state.definition.get("steps", []) if step.get("id")}


def failing_step(
    state: PipelineState, group: PipelineStepGroup, runs: int, window: Window, th: Thresholds
) -> Finding | None:
    """A step that fails often: retry it."""
    step = top_steps(state).get(group.step_id)
    if step is None or step.get("type") not in RETRIED_TYPES or group.n < th.min_pipeline_runs or group.failed < 5:
        return None
    rate = wilson(group.failed, group.n)
    retry = step.get("retry") or {}
    attempts, backoff = int(retry.get("max_attempts", 1)), float(retry.get("backoff_s", 1.0))
    if rate.lo < th.step_failure_rate or attempts >= MAX_ATTEMPTS:
        return None
    measured = group.extra_attempts >= th.min_retries
    if measured and wilson(group.retried_ok, group.extra_attempts).hi < th.useless_retry:
        return None  # the retries it has never help: more would not either
    wanted = min(attempts + 2, MAX_ATTEMPTS)
    if measured:
        success = group.retried_ok / group.extra_attempts
        saved = group.failed * (1 - (1 - success) ** (wanted - attempts))
        assumption = f"each further attempt succeeds as often as the retries seen ({pct(success)})"
    else:
        saved = group.n * (rate.value - rate.value ** (wanted / attempts))
        assumption = "attempts fail independently of each other at the rate seen"
    values = {"retry": {"max_attempts": wanted, "backoff_s": max(backoff, 2.0)}}
    return finding(
        RecommendationKind.PIPELINE,
        "pipeline.failing_step",
        pipeline_target(state.pipeline_id, group.step_id),
        title=f"step {group.step_id} fails in {pct(rate.value)} of runs; retry it up to {wanted} times",
        evidence=evidence_of(
            metric("step_failure_rate", rate, "share of runs whose step failed", method="Wilson score interval"),
            {
                "runs": group.n,
                "failed": group.failed,
                "max_attempts": attempts,
                "retried": group.retried,
                "retried_ok": group.retried_ok,
            },
            examples=group.examples,
            window=window,
            runs=runs,
        ),
        expected_gain=gain(per_thousand(saved, group.n), "fewer failed steps per 1,000 runs", assumption),
        action=pipeline_action(
            state.pipeline_id,
            state.version,
            [{"op": "set_step", "step_id": group.step_id, "values": values}],
            f"{group.step_id}.retry.max_attempts {attempts} → {wanted}",
        ),
        basis={"pipeline_version": state.version},
    )


def _reads(step: dict[str, Any], other: str) -> bool:
    """Whether any field of ``step`` but its id and needs mentions ``steps.<other>``."""
    fields = {k: v for k, v in step.items() if k not in ("id", "needs")}
    text = json.dumps(fields)
    pattern = rf"steps\s*(\.\s*{re.escape(other)}\b|\[\s*\\?[\"']{re.escape(other)}\\?[\"']\s*\])"
    return re.search(pattern, text) is not None


def _ancestors(steps: dict[str, dict[str, Any]], start: Sequence[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        name = stack.pop()
        if name in seen or name not in steps:
            continue
        seen.add(name)
        stack.extend(steps[name].get("needs", []))
    return seen


def loose_needs(state: PipelineState) -> list[tuple[str, str]]:
    """``(a, b)`` pairs where ``b`` needs ``a`` only for ordering: dropping the edge lets them overlap."""
    steps = top_steps(state)
    found = []
    for name, step in steps.items():
        needs = list(step.get("needs", []))
        for need in needs:
            before = steps.get(need)
            if before is None or before.get("type") in ORDERING_TYPES or before.get("if") or _reads(step, need):
                continue
            if need in _ancestors(steps, [n for n in needs if n != need]):
                continue  # b still waits for a through its other needs
            found.append((need, name))
    return found


def _median(values: list[float]) -> Estimate:
    return quantile(sorted(values), 0.5)


def concurrency(
    state: PipelineState, edge: tuple[str, str], runs: Sequence[RunSteps], total: int, window: Window, th: Thresholds
) -> Finding | None:
    """Drop an ordering-only ``needs`` whose two steps would save time by overlapping."""
    first, then = edge
    pairs = [(r.seconds[first], r.seconds[then]) for r in runs if first in r.seconds and then in r.seconds]
    if len(pairs) < th.min_pipeline_runs:
        return None
    saving = _median([min(a, b) for a, b in pairs])
    if saving.lo < th.min_saving_s:
        return None
    return finding(
        RecommendationKind.PIPELINE,
        "pipeline.concurrency",
        pipeline_target(state.pipeline_id, then, need=first),
        title=f"step {then} waits for {first} but reads nothing of it; run them concurrently"
        f" (about {saving.value:.1f} s per run)",
        evidence=evidence_of(
            metric("saving_s", saving, "seconds per run, the shorter of the two steps", method=ORDER_STATISTIC),
            {
                "runs": len(pairs),
                f"{first}_median_s": _median([a for a, _ in pairs]).to_json(digits=3),
                f"{then}_median_s": _median([b for _, b in pairs]).to_json(digits=3),
                "note": f"{then} no longer waits for {first}: it also runs when {first} fails",
            },
            examples=[r.run_id for r in runs],
            window=window,
            runs=total,
        ),
        expected_gain=gain(saving.value, "seconds shorter per run", "the two steps are on the run's critical path"),
        action=pipeline_action(
            state.pipeline_id,
            state.version,
            [{"op": "remove_need", "step_id": then, "need": first}],
            f"{then}.needs without {first}",
        ),
        basis={"pipeline_version": state.version},
        finding_key=f"{first}->{then}",
    )


def slow_map(
    state: PipelineState, map_id: str, runs: Sequence[RunSteps], total: int, window: Window, th: Thresholds
) -> Finding | None:
    """A map held back by its ``max_concurrency``: double it."""
    step = top_steps(state).get(map_id) or {}
    limit = int(step.get("max_concurrency", DEFAULT_MAP_CONCURRENCY))
    wanted = min(MAX_MAP_CONCURRENCY, 2 * limit)
    seen = [(r.seconds[map_id], r.items.get(map_id, 0)) for r in runs if map_id in r.seconds]
    if step.get("type") != "map" or wanted <= limit or len(seen) < th.min_pipeline_runs:
        return None
    items = _median([float(k) for _, k in seen])
    savings = [d * (1 - math.ceil(k / wanted) / math.ceil(k / limit)) if k else 0.0 for d, k in seen]
    saving = _median(savings)
    if items.value <= limit or saving.lo < th.min_saving_s:
        return None
    return finding(
        RecommendationKind.PIPELINE,
        "pipeline.slow_map",
        pipeline_target(state.pipeline_id, map_id),
        title=f"map {map_id} runs a median {items.value:g} items {limit} at a time; allow {wanted}"
        f" (about {saving.value:.1f} s per run)",
        evidence=evidence_of(
            metric("saving_s", saving, "seconds per run", method=ORDER_STATISTIC),
            {
                "runs": len(seen),
                "items_median": items.to_json(),
                "max_concurrency": limit,
                "map_median_s": _median([d for d, _ in seen]).to_json(digits=3),
                "note": "the tools and agents its items call take the higher concurrency",
            },
            examples=[r.run_id for r in runs],
            window=window,
            runs=total,
        ),
        expected_gain=gain(saving.value, "seconds shorter per run", "items take as long with more of them at once"),
        action=pipeline_action(
            state.pipeline_id,
            state.version,
            [{"op": "set_step", "step_id": map_id, "values": {"max_concurrency": wanted}}],
            f"{map_id}.max_concurrency {limit} → {wanted}",
        ),
        basis={"pipeline_version": state.version},
    )
