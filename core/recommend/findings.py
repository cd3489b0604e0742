"""Building findings: targets and their keys, fingerprints, metrics, gains and actions in one shape."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.contracts.recommend import ActionType, Finding, RecommendationKind
from core.recommend.stats import Estimate

MAX_EXAMPLES = 5


@dataclass(frozen=True, kw_only=True)
class Window:
    """The history a pass reads: runs created since ``since`` until ``until``."""

    since: datetime
    until: datetime

    def to_json(self, runs: int) -> dict[str, Any]:
        """The window as evidence shows it, with the runs it held for the target."""
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "runs": runs}


def fingerprint(kind: str, target_key: str, rule: str, finding_key: str = "") -> str:
    """The identity of a finding across passes: SHA-256 of its kind, target, rule and own key."""
    return hashlib.sha256(f"{kind}\x1f{target_key}\x1f{rule}\x1f{finding_key}".encode()).hexdigest()


def agent_target(agent_id: str, **part: str) -> tuple[dict[str, Any], str]:
    """The target (``{type: agent, agent_id, tool?|model?}``) and its key."""
    target: dict[str, Any] = {"type": "agent", "agent_id": agent_id, **part}
    key = f"agent:{agent_id}" + "".join(f"/{name}:{value}" for name, value in sorted(part.items()))
    return target, key


def pipeline_target(pipeline_id: str, step_id: str, **part: str) -> tuple[dict[str, Any], str]:
    """The target ``{type: pipeline, pipeline_id, step_id, ...}`` and its key."""
    target: dict[str, Any] = {"type": "pipeline", "pipeline_id": pipeline_id, "step_id": step_id, **part}
    key = f"pipeline:{pipeline_id}/step:{step_id}" + "".join(f"/{k}:{v}" for k, v in sorted(part.items()))
    return target, key


def metric(name: str, estimate: Estimate, unit: str, *, method: str) -> dict[str, Any]:
    """The headline number of a finding: its value, 95% interval, ``n``, unit and how the interval was computed."""
    return {"name": name, **estimate.to_json(), "unit": unit, "confidence": 0.95, "method": method}


def evidence_of(
    headline: dict[str, Any], numbers: dict[str, Any], *, examples: Sequence[str], window: Window, runs: int
) -> dict[str, Any]:
    """A finding's evidence: its headline ``metric``, the numbers behind it, the first ``MAX_EXAMPLES`` example runs and
    the window with the ``runs`` it held for the target."""
    return {
        "metric": headline,
        "numbers": numbers,
        "example_run_ids": list(examples[:MAX_EXAMPLES]),
        "window": window.to_json(runs),
    }


def gain(quantity: float, unit: str, assumption: str) -> dict[str, Any]:
    """``expected_gain``: the quantity, its unit and the assumption it rests on."""
    return {"quantity": round(quantity, 4), "unit": unit, "assumption": assumption}


def agent_action(agent_id: str, version: int, ops: list[dict[str, Any]], summary: str) -> dict[str, Any]:
    """A new current version of the agent from ``version`` and ``ops``."""
    return {
        "type": ActionType.AGENT_VERSION.value,
        "agent_id": agent_id,
        "from_version": version,
        "ops": ops,
        "summary": summary,
    }


def pipeline_action(pipeline_id: str, version: int, ops: list[dict[str, Any]], summary: str) -> dict[str, Any]:
    """A new version of the pipeline from ``version`` and ``ops``."""
    return {
        "type": ActionType.PIPELINE_VERSION.value,
        "pipeline_id": pipeline_id,
        "from_version": version,
        "ops": ops,
        "summary": summary,
    }


def finding(
    kind: RecommendationKind,
    rule: str,
    target: tuple[dict[str, Any], str],
    *,
    title: str,
    evidence: dict[str, Any],
    expected_gain: dict[str, Any],
    action: dict[str, Any],
    basis: dict[str, Any],
    finding_key: str = "",
) -> Finding:
    """A finding with every field set."""
    return Finding(
        kind=kind.value,
        rule=rule,
        target=target[0],
        target_key=target[1],
        title=title,
        evidence=evidence,
        expected_gain=expected_gain,
        action=action,
        basis=basis,
        finding_key=finding_key,
    )


def pct(value: float) -> str:
    """``0.4213`` as ``42%``."""
    return f"{value:.0%}"
