"""``prompt.cluster``: a kind of request the agent answers badly, as a cluster of similar run inputs.

The population is the newest runs of the agent's current version that failed or were rated
(bad: failed, or mean feedback below ``bad_score``). Their inputs are clustered
(:mod:`core.recommend.cluster`); a cluster is a finding when it holds at least
``min_cluster_bad`` bad runs and its bad rate's lower bound is ``cluster_excess`` above the
bad rate of the runs outside it. The action is an optimizer run with the cluster's runs as its
dataset (few-shot demos and a reflective rewrite of the instructions, judged by a rubric), not
promoted automatically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.contracts.recommend import ActionType, Finding, RecommendationKind
from core.recommend.cluster import Clusters, min_cluster_size
from core.recommend.findings import Window, agent_target, evidence_of, finding, gain, metric, pct
from core.recommend.history import AgentState, ClusterRun
from core.recommend.stats import per_thousand, wilson
from core.recommend.thresholds import Thresholds

DATASET_RUNS = 200
"""Runs of a cluster the recommended dataset takes at most (newest first)."""
RUBRIC = (
    "Answer the request correctly and completely. Earlier answers to requests like this one failed or were rated"
    " poorly; an example's own rubric, when it has one, says what people found wrong."
)
BUDGET = {"max_evals": 200}
STRATEGIES = ["few_shot", "reflective"]


def smallest_cluster(population: Sequence[ClusterRun], th: Thresholds) -> int:
    """The smallest cluster HDBSCAN keeps for this population."""
    return min_cluster_size(len(population), th.min_cluster_bad)


def clustered(
    agent: AgentState,
    population: Sequence[ClusterRun],
    clusters: Clusters,
    runs: int,
    window: Window,
    th: Thresholds,
) -> list[Finding]:
    """A finding per cluster markedly worse than the agent's other runs."""
    total, bad = len(population), sum(1 for r in population if r.bad)
    if total < th.min_cluster_runs or bad < th.min_cluster_bad:
        return []
    members: dict[int, list[ClusterRun]] = {}
    for run, label in zip(population, clusters.labels, strict=True):
        if label >= 0:
            members.setdefault(label, []).append(run)
    found = []
    for label, group in sorted(members.items()):
        inside = sum(1 for r in group if r.bad)
        rate = wilson(inside, len(group))
        outside = wilson(bad - inside, total - len(group))
        if inside < th.min_cluster_bad or rate.lo < outside.value + th.cluster_excess:
            continue
        terms = clusters.terms.get(label, [])
        found.append(_finding(agent, group, rate, outside.value, terms, runs, total, window))
    return found


def _finding(
    agent: AgentState,
    group: list[ClusterRun],
    rate: Any,
    outside: float,
    terms: list[str],
    runs: int,
    total: int,
    window: Window,
) -> Finding:
    """The finding of one cluster (``runs``: all runs of the version in the window; ``total``: those clustered)."""
    about = ", ".join(terms[:3]) or "similar requests"
    bad_runs = [r.run_id for r in group if r.bad]
    action = {
        "type": ActionType.OPTIMIZER_RUN.value,
        "agent_id": agent.agent_id,
        "from_version": agent.version,
        "dataset": {"name": f"recommended: {about}"[:200], "run_ids": [r.run_id for r in group][:DATASET_RUNS]},
        "metric": {"type": "judge", "rubric": RUBRIC},
        "budget": dict(BUDGET),
        "strategies": list(STRATEGIES),
        "auto_promote": False,
        "summary": f"optimize the instructions on {min(len(group), DATASET_RUNS)} runs about {about}",
    }
    return finding(
        RecommendationKind.PROMPT,
        "prompt.cluster",
        agent_target(agent.agent_id, field="instructions"),
        title=f"requests about {about}: {pct(rate.value)} go badly ({len(group)} runs) against {pct(outside)} of the"
        " others; optimize the instructions on them",
        evidence=evidence_of(
            metric("bad_rate", rate, "share of the cluster's runs failed or rated low", method="Wilson score interval"),
            {
                "cluster_runs": len(group),
                "bad_runs": len(bad_runs),
                "terms": terms,
                "other_bad_rate": round(outside, 4),
                "clustered_runs": total,
                "method": "TF-IDF of run inputs, truncated SVD, HDBSCAN",
            },
            examples=bad_runs,
            window=window,
            runs=runs,
        ),
        expected_gain=gain(
            per_thousand((rate.value - outside) * len(group), runs),
            "fewer bad runs per 1,000 runs",
            "the cluster's bad rate falls to the other runs' and its share of traffic stays",
        ),
        action=action,
        basis={"agent_version": agent.version},
        finding_key=",".join(sorted(terms[:3])),
    )
