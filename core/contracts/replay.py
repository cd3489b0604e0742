"""What ``ReplayWorkflow`` and its activities exchange (small payloads: ids and scores, never outputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REPLAY_WORKFLOW_NAME = "ReplayWorkflow"
REPLAY_FAILED = "ReplayFailed"
"""A replay that cannot go on (its agent or version is gone)."""


@dataclass
class ReplayInput:
    """A replay to run: ``version`` of the agent on each recorded run of ``run_ids``."""

    tenant_id: str
    replay_id: str
    agent_id: str
    version: int
    run_ids: list[str]
    metric: dict[str, Any] | None = None
    concurrency: int = 4
    heartbeat_timeout_s: float = 15.0


@dataclass
class ReplayRunInput:
    """One recorded run to replay."""

    tenant_id: str
    replay_id: str
    agent_id: str
    version: int
    run_id: str
    metric: dict[str, Any] | None = None


@dataclass
class ReplayedRun:
    """What one replayed run came to (its texts are in ``replay_result``)."""

    run_id: str
    outcome: str
    recorded_score: float | None = None
    candidate_score: float | None = None
    from_recording: int = 0
    not_in_recording: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class ReplayRecordInput:
    """The replay's status, and its summary once it has one."""

    tenant_id: str
    replay_id: str
    status: str
    summary: dict[str, Any] | None = None
    error: dict[str, Any] | None = field(default=None)
