"""Sample sizes and effect sizes below which the engine suggests nothing, so noise is not suggested.

A rule fires only when its sample is at least the ``min_*`` size and the interval of its
headline number (not the point estimate) clears the threshold: "the tool fails at least 10%
of the time" means the lower end of the failure rate's 95% interval is at least 0.10.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Every threshold of the rules (the defaults are what the workers use)."""

    min_calls: int = 50
    """Tool or model calls of one agent version before a rate about them is judged."""
    failure_rate: float = 0.10
    """``tool.failure_rate``: the failure rate's lower bound at least this."""
    remove_rate: float = 0.50
    """... and at least this: remove the tool rather than put a person before each call."""
    exhausted_rate: float = 0.01
    """``retry_policy.raise_attempts``: the share of calls failing with every attempt spent, lower bound."""
    retry_success: float = 0.10
    """... and a retry succeeds at least this often (lower bound): more attempts would save some."""
    min_retries: int = 50
    """``retry_policy.lower_attempts``: retries seen before judging that they never help ..."""
    useless_retry: float = 0.05
    """... which is when a retry's success rate is below this (upper bound)."""
    timeout_hit_rate: float = 0.01
    """``timeout.raise``: calls that hit their timeout, lower bound of the share."""
    min_timeout_calls: int = 200
    """``timeout.lower``: successful calls before a timeout is judged far too long ..."""
    loose_timeout_ratio: float = 0.10
    """... which is when the p99 duration's upper bound is below this share of the timeout."""
    min_approvals: int = 30
    """``tool.approval_always_approved``: decided approvals, none rejected."""
    min_feedback: int = 30
    """``model.cheaper``: feedback scores on each of the two versions."""
    cost_ratio: float = 0.8
    """... the cheaper version costs at most this share of the current one per run ..."""
    score_margin: float = 0.05
    """... and its score is at most this much lower (lower bound of the difference above ``-margin``)."""
    min_replayed: int = 20
    """``model.cheaper`` from a replay: scored runs replayed."""
    min_cluster_runs: int = 40
    """``prompt.cluster``: runs with feedback or failed, of the agent version, before clustering."""
    min_cluster_bad: int = 8
    """... bad runs (failed, or mean feedback below ``bad_score``) in a cluster ..."""
    cluster_excess: float = 0.15
    """... whose bad rate's lower bound is at least this above the agent's overall bad rate."""
    bad_score: float = 0.5
    max_cluster_runs: int = 1500
    """The most recent runs clustered per agent version (bounded work)."""
    min_pipeline_runs: int = 30
    """``pipeline.*``: runs of the pipeline version with the step."""
    step_failure_rate: float = 0.10
    """``pipeline.failing_step``: the step's failure rate, lower bound."""
    min_saving_s: float = 1.0
    """``pipeline.concurrency`` and ``pipeline.slow_map``: the median saving per run, lower bound, in seconds."""
    min_outcome_runs: int = 50
    """Runs of the applied change before its outcome is final."""


DEFAULT = Thresholds()
