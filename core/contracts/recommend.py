"""What ``RecommendationWorkflow`` and its activities exchange: findings are small (numbers, ids, patches).

A mining pass runs one ``recommend.mine`` activity per miner (SQL over the projections, then
statistics; :data:`MINERS` says which kinds each finds), one ``recommend.save`` that turns the
findings into recommendations (dedupe, suppression after a dismissal, staleness) and one
``recommend.outcomes`` that measures the recommendations applied so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

WORKFLOW_NAME = "RecommendationWorkflow"
MINING_FAILED = "RecommendationMiningFailed"
"""A pass that could not read the history (after its retries)."""


class RecommendationKind(StrEnum):
    """What a recommendation is about."""

    PROMPT = "prompt"
    MODEL = "model"
    RETRY_POLICY = "retry_policy"
    TIMEOUT = "timeout"
    TOOL = "tool"
    PIPELINE = "pipeline"


class RecommendationStatus(StrEnum):
    """Where a recommendation is."""

    OPEN = "open"
    APPLIED = "applied"
    DISMISSED = "dismissed"
    STALE = "stale"
    """Its target changed since the evidence was computed, or the finding is no longer observed."""


class ActionType(StrEnum):
    """The change ``apply`` performs."""

    AGENT_VERSION = "agent_version"
    """A new version of the agent from its current one and the action's ``ops``, made current."""
    PIPELINE_VERSION = "pipeline_version"
    """A new version of the pipeline from its current definition and the action's ``ops``."""
    OPTIMIZER_RUN = "optimizer_run"
    """A dataset of the action's runs, and an optimizer run of the agent on it."""


ACTION_PERMISSION: dict[ActionType, str] = {
    ActionType.AGENT_VERSION: "agents:write",
    ActionType.PIPELINE_VERSION: "pipelines:write",
    ActionType.OPTIMIZER_RUN: "optimizer:write",
}
"""The permission apply needs besides ``recommendations:write``: the one the same change needs over the API."""


MINERS: dict[str, tuple[RecommendationKind, ...]] = {
    "calls": (RecommendationKind.RETRY_POLICY, RecommendationKind.TIMEOUT, RecommendationKind.TOOL),
    "model": (RecommendationKind.MODEL,),
    "prompt": (RecommendationKind.PROMPT,),
    "pipeline": (RecommendationKind.PIPELINE,),
}
"""Each miner and the kinds it finds: ``calls`` reads an agent version's tool, model and approval steps once."""


@dataclass
class Finding:
    """One finding of a rule, with everything its recommendation shows."""

    kind: str
    rule: str
    target: dict[str, Any]
    target_key: str
    """A stable text naming the target (``agent:<id>/tool:<name>``)."""
    title: str
    evidence: dict[str, Any]
    """``metric`` {name, value, ci, n, unit}, rule-specific ``numbers``, ``example_run_ids``, ``window``, ``method``."""
    expected_gain: dict[str, Any]
    """``{quantity, unit, assumption}``."""
    action: dict[str, Any]
    basis: dict[str, Any]
    finding_key: str = ""
    """What tells two findings of one rule on one target apart (a cluster's terms); part of the fingerprint."""


@dataclass
class RecommendationInput:
    """One mining pass of a tenant over the last ``window_days`` of its history."""

    tenant_id: str
    window_days: float = 30.0
    trigger: str = "schedule"
    """``schedule`` or ``refresh`` (``POST /v1/recommendations/refresh``)."""
    heartbeat_timeout_s: float = 30.0


@dataclass
class MineInput:
    """Run one miner (a key of :data:`MINERS`) over the tenant's history."""

    tenant_id: str
    miner: str
    window_days: float = 30.0


@dataclass
class Mined:
    """The findings of one miner, and how much history they came from."""

    miner: str
    findings: list[Finding] = field(default_factory=list)
    scanned: int = 0
    """Runs in the window the miner's targets had."""


@dataclass
class SaveInput:
    """Turn a pass's findings into recommendations (the kinds mined: their open recommendations not found go stale)."""

    tenant_id: str
    kinds: list[str]
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Saved:
    """What a pass changed."""

    opened: int = 0
    updated: int = 0
    suppressed: int = 0
    """Findings not suggested again: dismissed before, evidence not changed materially."""
    stale: int = 0


@dataclass
class OutcomesInput:
    """Measure the tenant's applied recommendations whose outcome is not final yet."""

    tenant_id: str
    window_days: float = 30.0
    """How far before its apply the version a recommendation changed is measured."""


@dataclass
class Measured:
    """How many applied recommendations got an outcome, and how many of those are final."""

    measured: int = 0
    final: int = 0
