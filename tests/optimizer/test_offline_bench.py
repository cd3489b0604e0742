"""The offline optimizer bench on one small seed: its in-process scores are the platform's, its budgets hold."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.offline_methods import clopper_pearson
from bench.optimizer_offline import METHODS, Setup, run_seed_on_stack
from workers.embedded.stack import StackProcess


async def test_one_seed_reproduces_the_platforms_scores_within_the_budget(
    stack: StackProcess, engine: AsyncEngine
) -> None:
    setup = Setup(examples=60, max_evals=60, strategies=["few_shot", "reflective"], run_timeout_s=120)

    result = await run_seed_on_stack(stack.api_url, engine, seed=3, aa=False, settings=setup)

    assert result.checked >= 3, "the baseline and at least two candidates were scored on validation"
    assert result.matched == result.checked, "in-process scores and test decisions equal the optimizer run's"
    assert set(result.methods) == set(METHODS)
    for name, scored in result.methods.items():
        assert 0 < scored.evals <= setup.max_evals, name
        assert scored.own_best >= scored.final, name
    assert result.methods["random"].evals > setup.max_evals // 2, "random search spends its validation share"


def test_clopper_pearson_matches_known_intervals() -> None:
    assert clopper_pearson(0, 30) == pytest.approx((0.0, 0.11570), abs=1e-5)
    assert clopper_pearson(5, 10) == pytest.approx((0.18709, 0.81291), abs=1e-5)
    assert clopper_pearson(30, 30) == pytest.approx((0.88430, 1.0), abs=1e-5)
