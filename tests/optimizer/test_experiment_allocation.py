"""Thompson allocation online: new subjects follow the posteriors, known subjects keep their arm, first runs agree."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from core.db.models import Experiment
from core.optimizer.experiment_store import CANDIDATE, CONTROL, MIN_SHARE, candidate_share, running_experiment, state_of
from core.optimizer.experiments import ExperimentState, hash_point
from tests.conftest import TenantCtx
from tests.support.experiments import candidate_version, give_feedback, runs_by_arm, start_experiment, start_run
from tests.support.runs import create_agent, wait_run


def _experiment_row(traffic: float, min_samples: int) -> Experiment:
    return running_experiment(
        "exp_alloc",
        "ten_x",
        "agt_x",
        control_version=1,
        candidate_version=2,
        traffic=traffic,
        min_samples=min_samples,
        auto_promote=True,
    )


def _scored(row: Experiment, control: list[float], candidate: list[float]) -> ExperimentState:
    state = state_of(row)
    for score in control:
        state = state.record("1", score)
    for score in candidate:
        state = state.record("2", score)
    return state


def test_the_share_is_traffic_until_min_samples_then_follows_the_posteriors() -> None:
    row = _experiment_row(traffic=0.2, min_samples=5)
    assert candidate_share(row, _scored(row, [0.0] * 5, [1.0] * 4)) == 0.2
    better = _scored(row, [0.2, 0.4, 0.3, 0.5, 0.3, 0.4], [0.6, 0.8, 0.7, 0.5, 0.7, 0.9])
    share = candidate_share(row, better)
    assert 0.5 < share <= 1 - MIN_SHARE
    assert candidate_share(row, better) == share  # seeded by the experiment and its number of scores
    worse = _scored(row, [1.0] * 5, [0.0] * 5)
    assert candidate_share(row, worse) == MIN_SHARE
    tied = candidate_share(row, _scored(row, [1.0, 0.0] * 10, [0.0, 1.0] * 10))
    assert 0.35 < tied < 0.65


async def _runs_of(http: httpx.AsyncClient, agent_id: str, subjects: list[str]) -> list[dict[str, Any]]:
    """One run per subject (started together), all waited for."""
    runs = await asyncio.gather(*(start_run(http, agent_id, subject=s) for s in subjects))
    for run in runs:
        await wait_run(http, run["id"])
    return list(runs)


async def test_allocation_shifts_to_the_better_arm_and_known_subjects_keep_theirs(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    candidate = await candidate_version(tenant.http, agent["id"], instructions="Answer briefly.")
    experiment = await start_experiment(
        tenant.http, agent["id"], candidate_version=candidate, traffic=0.2, min_samples=5
    )
    assert experiment["candidate_share"] == 0.2
    arms = await runs_by_arm(tenant.http, agent["id"], per_arm=5)
    for control_run, candidate_run in zip(arms[CONTROL], arms[CANDIDATE], strict=True):
        await give_feedback(tenant.http, candidate_run["id"], 1.0)
        await give_feedback(tenant.http, control_run["id"], 0.0)
    shown = (await tenant.http.get(f"/v1/experiments/{experiment['id']}")).json()
    assert shown["status"] == "running", shown  # five scores each: the mSPRT has not decided yet
    share = shown["candidate_share"]
    assert 0.5 < share <= 1 - MIN_SHARE

    # a control subject from before the shift, whose hash now points at the candidate, stays on the control
    started = max(int(run["subject"].removeprefix("user-")) for runs in arms.values() for run in runs)
    early = [f"user-{n}" for n in range(started + 1)]
    on_control = [subject for subject in early if hash_point(experiment["id"], subject) < 1 - 0.2]
    sticky = max(on_control, key=lambda subject: hash_point(experiment["id"], subject))
    assert hash_point(experiment["id"], sticky) >= 1 - share
    for _ in range(4):
        batch = await _runs_of(tenant.http, agent["id"], [sticky] * 25)
        assert {(run["experiment_arm"], run["agent_version"]) for run in batch} == {(CONTROL, 1)}

    # new subjects are split at the new share: far more candidates than traffic's 20%
    fresh = await _runs_of(tenant.http, agent["id"], [f"new-{n}" for n in range(40)])
    expected = [CANDIDATE if hash_point(experiment["id"], f"new-{n}") >= 1 - share else CONTROL for n in range(40)]
    assert [run["experiment_arm"] for run in fresh] == expected
    assert sum(arm == CANDIDATE for arm in expected) > 2 * 0.2 * len(expected)


async def test_concurrent_first_runs_of_a_subject_get_one_arm(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    candidate = await candidate_version(tenant.http, agent["id"], instructions="Answer briefly.")
    experiment = await start_experiment(tenant.http, agent["id"], candidate_version=candidate, traffic=0.5)
    for subject in ("first-a", "first-b", "first-c"):
        runs = await _runs_of(tenant.http, agent["id"], [subject] * 10)
        assert {run["experiment_id"] for run in runs} == {experiment["id"]}
        assert len({(run["experiment_arm"], run["agent_version"]) for run in runs}) == 1
