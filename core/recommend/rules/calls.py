"""Rules over an agent version's calls (tools, model, approvals): retry policy, timeout, failing tools, approvals.

Each rule reads one :class:`~core.recommend.history.StepGroup` (the calls of one tool or model of
the agent's current version in the window) and the agent's configuration, and returns a finding
or ``None``. Rates are Wilson intervals; a rule fires on the interval's bound, never on the
point estimate, and only above its sample size (``core.recommend.thresholds``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from core import policies
from core.contracts.recommend import Finding, RecommendationKind
from core.recommend.findings import Window, agent_action, agent_target, evidence_of, finding, gain, metric, pct
from core.recommend.history import AgentState, StepGroup
from core.recommend.stats import Estimate, per_thousand, quantile, wilson
from core.recommend.thresholds import Thresholds

MAX_ATTEMPTS = 20
"""The largest ``max_attempts`` a tool or model accepts (``core.agents``)."""
MAX_TOOL_TIMEOUT_S = 3600.0
WILSON = "Wilson score interval"
ORDER_STATISTIC = "order-statistic interval (distribution-free)"


def binding(agent: AgentState, tool: str) -> dict[str, Any] | None:
    """The agent's binding of ``tool`` (``None``: the tool is not attached to the current version)."""
    for item in agent.config.get("tools", []):
        spec = {"name": item} if isinstance(item, str) else item
        if spec.get("name") == tool:
            return dict(spec)
    return None


def attempt_limit(agent: AgentState, group: StepGroup) -> int:
    """How many attempts a call of the group gets: the tool's or model's ``max_attempts``, else the default policy."""
    if group.kind == "llm":
        configured = agent.config.get("model", {}).get("params", {}).get("max_attempts")
        return int(configured) if isinstance(configured, int) else policies.LLM_RETRY.maximum_attempts
    spec = binding(agent, group.name) or {}
    configured = spec.get("max_attempts")
    return int(configured) if isinstance(configured, int) else policies.TOOL_RETRY.maximum_attempts


def timeout_of(agent: AgentState, tool: str) -> float:
    """The tool call's timeout in seconds (one attempt)."""
    configured = (binding(agent, tool) or {}).get("timeout_s")
    return float(configured) if configured else policies.TOOL_TIMEOUT.total_seconds()


def _target(group: StepGroup) -> tuple[dict[str, Any], str]:
    if group.kind == "llm":
        return agent_target(group.agent_id, model=group.name)
    return agent_target(group.agent_id, tool=group.name)


def _what(group: StepGroup) -> str:
    return f"model {group.name}" if group.kind == "llm" else f"tool {group.name}"


def _set_tool(group: StepGroup, **values: Any) -> dict[str, Any]:
    return {"op": "set_tool", "tool": group.name, "values": values}


def _attempts_op(group: StepGroup, attempts: int) -> dict[str, Any]:
    if group.kind == "llm":
        return {"op": "set_model_param", "param": "max_attempts", "value": attempts}
    return _set_tool(group, max_attempts=attempts)


def _evidence(group: StepGroup, window: Window, runs: int, headline: dict[str, Any], **numbers: Any) -> dict[str, Any]:
    return evidence_of(headline, {"calls": group.n, **numbers}, examples=group.examples, window=window, runs=runs)


def call_finding(
    kind: RecommendationKind,
    rule: str,
    agent: AgentState,
    group: StepGroup,
    *,
    title: str,
    evidence: dict[str, Any],
    expected_gain: dict[str, Any],
    ops: list[dict[str, Any]],
    summary: str,
) -> Finding:
    """A finding on the calls of ``group`` (its tool or model is the target) whose action applies ``ops`` to the
    agent's current version (``summary`` says what they change)."""
    return finding(
        kind,
        rule,
        _target(group),
        title=title,
        evidence=evidence,
        expected_gain=expected_gain,
        action=agent_action(group.agent_id, agent.version, ops, summary),
        basis={"agent_version": agent.version},
    )


def raise_attempts(agent: AgentState, group: StepGroup, runs: int, window: Window, th: Thresholds) -> Finding | None:
    """Calls often fail with every attempt spent while a retry often succeeds: more attempts save some."""
    if group.kind not in ("tool", "llm") or group.n < th.min_calls:
        return None
    limit = attempt_limit(agent, group)
    exhausted = sum(1 for attempts in group.exhausted_attempts if attempts >= limit)
    rate = wilson(exhausted, group.n)
    retry = wilson(group.retried_ok, group.extra_attempts)
    if exhausted < 3 or rate.lo < th.exhausted_rate or retry.lo < th.retry_success or limit >= MAX_ATTEMPTS:
        return None
    wanted = min(limit + 2, MAX_ATTEMPTS)
    saved = exhausted * (1 - (1 - retry.value) ** (wanted - limit))
    return call_finding(
        RecommendationKind.RETRY_POLICY,
        "retry_policy.raise_attempts",
        agent,
        group,
        title=f"{_what(group)}: {pct(rate.value)} of calls fail after all {limit} attempts; allow {wanted}",
        evidence=_evidence(
            group,
            window,
            runs,
            metric("exhausted_rate", rate, "share of calls failing with every attempt spent", method=WILSON),
            exhausted=exhausted,
            attempt_limit=limit,
            retried=group.retried,
            retried_ok=group.retried_ok,
            retry_success=retry.to_json(),
        ),
        expected_gain=gain(
            per_thousand(saved, runs),
            "fewer failed calls per 1,000 runs",
            f"each further attempt succeeds as often as the retries seen ({pct(retry.value)})",
        ),
        ops=[_attempts_op(group, wanted)],
        summary=f"max_attempts {limit} → {wanted}",
    )


def lower_attempts(agent: AgentState, group: StepGroup, runs: int, window: Window, th: Thresholds) -> Finding | None:
    """Retries of the calls almost never succeed: fail fast instead of waiting through them."""
    if group.kind not in ("tool", "llm") or group.extra_attempts < th.min_retries:
        return None
    limit = attempt_limit(agent, group)
    retry = wilson(group.retried_ok, group.extra_attempts)
    if limit <= 1 or retry.hi >= th.useless_retry:
        return None
    return call_finding(
        RecommendationKind.RETRY_POLICY,
        "retry_policy.lower_attempts",
        agent,
        group,
        title=f"{_what(group)}: retries succeeded {group.retried_ok} of {group.extra_attempts} times; stop retrying",
        evidence=_evidence(
            group,
            window,
            runs,
            metric("retry_success_rate", retry, "share of retries that succeeded", method=WILSON),
            attempt_limit=limit,
            retried=group.retried,
            retried_ok=group.retried_ok,
            retries=group.extra_attempts,
        ),
        expected_gain=gain(
            per_thousand(group.extra_attempts, runs),
            "fewer retry attempts per 1,000 runs",
            "calls that failed their first attempt keep failing, as the retries seen did",
        ),
        ops=[_attempts_op(group, 1)],
        summary=f"max_attempts {limit} → 1",
    )


def _duration_numbers(durations: list[float]) -> dict[str, Any]:
    return {f"p{int(p * 100)}_s": quantile(durations, p).to_json(digits=3) for p in (0.5, 0.95, 0.99)}


def raise_timeout(agent: AgentState, group: StepGroup, runs: int, window: Window, th: Thresholds) -> Finding | None:
    """Calls hit the tool's timeout: give it twice as long."""
    if group.kind != "tool" or group.n < th.min_calls or binding(agent, group.name) is None:
        return None
    limit = timeout_of(agent, group.name)
    hits = group.timeout_errors + sum(1 for seconds in group.retried_durations if seconds >= limit)
    rate = wilson(hits, group.n)
    if hits < 3 or rate.lo < th.timeout_hit_rate or limit >= MAX_TOOL_TIMEOUT_S:
        return None
    wanted = min(MAX_TOOL_TIMEOUT_S, 2 * limit)
    near = sum(1 for seconds in group.ok_durations if seconds >= 0.8 * limit)
    numbers = {"timeout_s": limit, "hits": hits, "succeeded_near_limit": near}
    if group.ok_durations:
        numbers |= _duration_numbers(group.ok_durations)
    return call_finding(
        RecommendationKind.TIMEOUT,
        "timeout.raise",
        agent,
        group,
        title=f"tool {group.name}: {pct(rate.value)} of calls hit the {limit:g} s timeout; allow {wanted:g} s",
        evidence=_evidence(
            group,
            window,
            runs,
            metric("timeout_hit_rate", rate, "share of calls that timed out", method=WILSON),
            **numbers,
        ),
        expected_gain=gain(
            per_thousand(hits, runs),
            "fewer timed-out calls per 1,000 runs (at most)",
            "every call that timed out would have finished within the doubled timeout",
        ),
        ops=[_set_tool(group, timeout_s=wanted)],
        summary=f"timeout_s {limit:g} → {wanted:g}",
    )


def lower_timeout(agent: AgentState, group: StepGroup, runs: int, window: Window, th: Thresholds) -> Finding | None:
    """A timeout set far above what any call needs: a hung call waits for all of it (the default is left alone)."""
    spec = binding(agent, group.name) if group.kind == "tool" else None
    if spec is None or not spec.get("timeout_s") or len(group.ok_durations) < th.min_timeout_calls:
        return None
    limit = timeout_of(agent, group.name)
    hits = group.timeout_errors + sum(1 for seconds in group.retried_durations if seconds >= limit)
    p99 = quantile(group.ok_durations, 0.99)
    wanted = float(max(1, math.ceil(3 * p99.hi)))
    if hits or p99.hi >= th.loose_timeout_ratio * limit or wanted >= limit:
        return None
    return call_finding(
        RecommendationKind.TIMEOUT,
        "timeout.lower",
        agent,
        group,
        title=f"tool {group.name}: 99% of calls finish within {p99.value:.2g} s, its timeout is {limit:g} s;"
        f" set {wanted:g} s",
        evidence=_evidence(
            group,
            window,
            runs,
            metric("p99_duration_s", p99, "seconds (first attempts that completed)", method=ORDER_STATISTIC),
            timeout_s=limit,
            hits=0,
            **_duration_numbers(group.ok_durations),
        ),
        expected_gain=gain(
            limit - wanted,
            "seconds less waiting on a call that hangs",
            "a hung call waits for the whole timeout; three times the p99's upper bound keeps the slow ones",
        ),
        ops=[_set_tool(group, timeout_s=wanted)],
        summary=f"timeout_s {limit:g} → {wanted:g}",
    )


def failing_tool(
    agent: AgentState, group: StepGroup, runs: int, window: Window, th: Thresholds, errors: list[dict[str, Any]]
) -> Finding | None:
    """A tool answers errors often: remove it (failing most of the time) or have a person check each call first.

    Calls that failed after their retries (the call itself, not the tool's answer) are the retry rules' concern.
    """
    spec = binding(agent, group.name) if group.kind == "tool" else None
    called = group.n - group.rejected
    failures = group.failed_result
    if spec is None or called < th.min_calls or failures < 5:
        return None
    rate = wilson(failures, called)
    if rate.lo < th.failure_rate:
        return None
    remove = rate.lo >= th.remove_rate
    if not remove and spec.get("requires_approval"):
        return None
    if remove:
        op: dict[str, Any] = {"op": "remove_tool", "tool": group.name}
        change, unit = f"remove tool {group.name}", "fewer failed tool calls per 1,000 runs"
    else:
        op = _set_tool(group, requires_approval=True)
        change, unit = "requires_approval false → true", "failed tool calls per 1,000 runs a person sees first"
    return call_finding(
        RecommendationKind.TOOL,
        "tool.failure_rate",
        agent,
        group,
        title=f"tool {group.name} fails {pct(rate.value)} of its calls [{pct(rate.lo)}, {pct(rate.hi)}]; {change}",
        evidence=_evidence(
            group,
            window,
            runs,
            metric("failure_rate", rate, "share of calls that failed", method=WILSON),
            failed=failures,
            failed_after_retries=group.failed_activity,
            rejected_by_a_person=group.rejected,
            top_errors=errors,
        ),
        expected_gain=gain(per_thousand(failures, runs), unit, "the tool keeps failing at the rate seen"),
        ops=[op],
        summary=change,
    )


def always_approved(agent: AgentState, group: StepGroup, runs: int, window: Window, th: Thresholds) -> Finding | None:
    """Every approval of a tool's calls was granted by a person: the approval only adds waiting."""
    spec = binding(agent, group.name) if group.kind == "approval" else None
    if spec is None or not spec.get("requires_approval") or group.n < th.min_approvals:
        return None
    if group.rejected or group.deadline:
        return None
    rejection = wilson(0, group.n)
    wait = quantile(group.ok_durations, 0.5) if group.ok_durations else Estimate(0.0, 0.0, 0.0, 0)
    return call_finding(
        RecommendationKind.TOOL,
        "tool.approval_always_approved",
        agent,
        group,
        title=f"tool {group.name}: all {group.n} approvals were granted; drop the approval",
        evidence=evidence_of(
            metric("rejection_rate", rejection, "share of approvals rejected", method=WILSON),
            {"approvals": group.n, "rejected": 0, "median_wait_s": wait.to_json(digits=3)},
            examples=[],
            window=window,
            runs=runs,
        ),
        expected_gain=gain(
            per_thousand(group.n, runs) * wait.value / 60.0,
            "minutes of waiting for approval per 1,000 runs",
            "approvals keep being granted; each waited the median time seen",
        ),
        ops=[_set_tool(group, requires_approval=False)],
        summary="requires_approval true → false",
    )


CallRule = Callable[[AgentState, StepGroup, int, Window, Thresholds], Finding | None]
RETRY_RULES: tuple[CallRule, ...] = (raise_attempts, lower_attempts)
TIMEOUT_RULES: tuple[CallRule, ...] = (raise_timeout, lower_timeout)
