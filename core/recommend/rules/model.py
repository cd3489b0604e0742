"""``model.cheaper``: a cheaper model whose score holds, with the cost saved per 1,000 runs.

For each live agent, every other version of it whose model differs from the current one's is
a candidate when it costs at most ``cost_ratio`` of the current version per run (measured on
its own runs, else on its replays). Its score holds when the interval of the difference
(candidate minus current) stays above ``-score_margin``:

- from feedback on runs of both versions (per-run mean scores, Welch interval), and/or
- from a counterfactual replay of the candidate on the current version's recorded runs
  (paired differences, normal interval).

Where both exist both must hold. Without a scored replay, the evidence carries the replay to
run (``check``) before applying.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.contracts.recommend import Finding, RecommendationKind
from core.recommend.findings import Window, agent_action, agent_target, evidence_of, finding, gain, metric, pct
from core.recommend.history import AgentState, ReplayedPair, RunVolume
from core.recommend.stats import Estimate, difference, mean_estimate
from core.recommend.thresholds import Thresholds

MIN_COST_RUNS = 10
"""Runs of a version before its own cost per run is used."""
CHECK_SAMPLE = 50
CHECK_RUBRIC = "The answer is correct, complete and as helpful as the recorded one."


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A cheaper version and the evidence that its score holds."""

    version: int
    model: dict[str, Any]
    cost: Estimate
    feedback: Estimate | None
    replay: Estimate | None
    replay_ids: list[str]


def _label(model: Mapping[str, Any]) -> str:
    return f"{model.get('provider', 'local')}:{model.get('name', '')}"


def _candidate(
    agent: AgentState,
    current: RunVolume,
    other: RunVolume | None,
    version: int,
    model: dict[str, Any],
    replay: ReplayedPair | None,
    th: Thresholds,
) -> Candidate | None:
    if other is not None and other.runs >= MIN_COST_RUNS:
        cost = mean_estimate(other.cost)
    elif replay is not None and replay.difference.n >= th.min_replayed:
        cost = Estimate(replay.candidate_cost, replay.candidate_cost, replay.candidate_cost, replay.difference.n)
    else:
        return None
    if cost.value > th.cost_ratio * current.cost.mean:
        return None
    feedback = None
    if other is not None and min(other.feedback.n, current.feedback.n) >= th.min_feedback:
        feedback = difference(other.feedback, current.feedback)
    replayed = None
    if replay is not None and replay.difference.n >= th.min_replayed:
        replayed = mean_estimate(replay.difference)
    shown = [e for e in (feedback, replayed) if e is not None]
    if not shown or any(e.lo < -th.score_margin for e in shown):
        return None
    return Candidate(
        version=version,
        model=model,
        cost=cost,
        feedback=feedback,
        replay=replayed,
        replay_ids=replay.replay_ids if replay else [],
    )


def cheaper_model(
    agent: AgentState,
    volumes: Mapping[int, RunVolume],
    models: Mapping[int, dict[str, Any]],
    replays: Mapping[int, ReplayedPair],
    window: Window,
    th: Thresholds,
) -> Finding | None:
    """The cheapest version of ``agent`` with another model whose score holds, as a switch of the current model.

    ``volumes`` and ``models`` are by version; ``replays`` by candidate version (replayed on the current one's runs).
    """
    current = volumes.get(agent.version)
    mine = agent.config.get("model", {})
    if current is None or current.runs < MIN_COST_RUNS or current.cost.mean <= 0:
        return None
    found = []
    for version, model in models.items():
        if version == agent.version or _label(model) == _label(mine):
            continue
        candidate = _candidate(agent, current, volumes.get(version), version, model, replays.get(version), th)
        if candidate is not None:
            found.append(candidate)
    if not found:
        return None
    best = min(found, key=lambda c: (c.cost.value, c.version))
    saving = current.cost.mean - best.cost.value
    headline = best.replay if best.replay is not None else best.feedback
    assert headline is not None
    source = "counterfactual replay" if best.replay is not None else "feedback on runs of both versions"
    evidence = evidence_of(
        metric(
            "score_difference",
            headline,
            "score points, cheaper minus current",
            method="paired normal interval" if best.replay is not None else "Welch interval of two means",
        ),
        {
            "current": {
                "version": agent.version,
                "model": _label(mine),
                "cost_per_run_usd": current.cost.mean,
                "runs": current.runs,
                "feedback": _feedback(current),
            },
            "candidate": {
                "version": best.version,
                "model": _label(best.model),
                "cost_per_run_usd": best.cost.to_json(digits=8),
                "feedback": _feedback(volumes.get(best.version)),
            },
            "feedback_difference": best.feedback.to_json() if best.feedback else None,
            "replay_difference": best.replay.to_json() if best.replay else None,
            "replay_ids": best.replay_ids,
            "source": source,
        },
        examples=[],
        window=window,
        runs=current.runs,
    )
    if best.replay is None:
        evidence["check"] = {
            "what": "replay the current version's recorded runs with the cheaper version before applying",
            "method": "POST",
            "path": f"/v1/agents/{agent.agent_id}/replays",
            "body": {
                "version": best.version,
                "sample": CHECK_SAMPLE,
                "metric": {"type": "judge", "rubric": CHECK_RUBRIC},
            },
        }
    share = saving / current.cost.mean
    return finding(
        RecommendationKind.MODEL,
        "model.cheaper",
        agent_target(agent.agent_id, field="model"),
        title=f"model {_label(best.model)} costs {pct(share)} less per run than {_label(mine)} with a score within"
        f" {th.score_margin:g} ({source}); switch",
        evidence=evidence,
        expected_gain=gain(
            1000 * saving,
            "USD saved per 1,000 runs",
            f"runs cost what the cheaper version's cost ({source} shows its score holds)",
        ),
        action=agent_action(
            agent.agent_id,
            agent.version,
            [{"op": "set_model", "model": best.model}],
            f"model {_label(mine)} → {_label(best.model)} (as in version {best.version})",
        ),
        basis={"agent_version": agent.version},
        finding_key=_label(best.model),
    )


def _feedback(volume: RunVolume | None) -> dict[str, Any] | None:
    if volume is None or volume.feedback.n == 0:
        return None
    return mean_estimate(volume.feedback).to_json()
