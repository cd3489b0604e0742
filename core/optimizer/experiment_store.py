"""Online experiments in the database: create, assign a run's arm, learn from feedback, end.

An experiment compares an agent's current version (the control, fixed at creation) with a
candidate version. A subject (else thread) gets an arm on its first run and keeps it: the arm is
recorded in ``experiment_assignment`` by one statement on the run-start path (``assign``: an
``INSERT … ON CONFLICT DO NOTHING RETURNING`` that also reads a recorded arm), so concurrent
first runs of one subject agree and a change of weights never moves a subject. A new subject's
arm is its SHA-256 point on [0, 1) (``hash_point``) cut at ``1 - candidate_share``: the
candidate's share is ``traffic`` until every arm has ``min_samples`` scores, then the Thompson
allocation (each arm's posterior chance of being best, ``shares``, seeded by the experiment and
its number of scores, kept within [``MIN_SHARE``, 1 - ``MIN_SHARE``]), recomputed by each feedback
score in its transaction and stored on the experiment row. Each score updates its arm's
statistics under a row lock on the experiment, then the guardrails (``guardrail_breach`` over the
arms' finished runs) and the sequential decision (``decide``) may end it: rolled back, promoted
(the candidate becomes current when ``auto_promote``) or stopped.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db.models import Agent, Experiment, Run, utcnow
from core.db.reads import RunningExperiment
from core.db.repos import SYSTEM, AgentRepository, Author, Keyset, newest_first
from core.ids import new_id
from core.optimizer.experiments import (
    Decision,
    ExperimentState,
    GuardrailLimits,
    OpsStats,
    Rules,
    adaptive,
    decide,
    guardrail_breach,
    hash_point,
    shares,
)

CONTROL = "control"
CANDIDATE = "candidate"
ARMS = (CONTROL, CANDIDATE)


class ExperimentStatus(StrEnum):
    """Where an experiment is; only a running one assigns runs and learns."""

    RUNNING = "running"
    PROMOTED = "promoted"
    STOPPED = "stopped"
    ROLLED_BACK = "rolled_back"


class Outcome(StrEnum):
    """How an experiment that ended by a decision ended."""

    PROMOTE = "promote"
    WINNER = "winner"
    """The candidate won, ``auto_promote`` is off: promoting it is left to a person."""
    KEEP = "keep"
    ROLLBACK = "rollback"
    STOPPED = "stopped"


class ExperimentRunning(Exception):  # noqa: N818 - a conflict, reported as 409
    """The agent already has a running experiment."""

    def __init__(self, experiment_id: str):
        super().__init__(f"the agent already runs experiment {experiment_id}")
        self.experiment_id = experiment_id


MIN_SHARE = 0.2
"""Once allocation adapts, each arm keeps at least this share of new subjects (both keep earning scores).

Every decision compares the candidate with the control: starving either arm slows it.
``python -m bench.optimizer --part two-arm`` (Bernoulli scores, control at 0.5, a new subject
per event, 40 seeds) promoted a candidate 0.10 better within 1,000 events in 20% of seeds with a
5% floor, 55% with this 20% floor and 75% with a fixed even split; in its A/A runs it promoted in
0, 1 and 1 of 40 seeds. The floor trades some of that power for giving a better candidate more
of the traffic while the test runs."""
ALLOCATION_DRAWS = 1_000
"""Posterior draws behind the Thompson allocation (its standard error is under 1.6 points)."""


def running_experiment(
    experiment_id: str,
    tenant_id: str,
    agent_id: str,
    *,
    control_version: int,
    candidate_version: int,
    traffic: float,
    min_samples: int,
    auto_promote: bool,
    author: Author = SYSTEM,
) -> Experiment:
    """The row of a new running experiment: no scores yet, the candidate's share is ``traffic``."""
    return Experiment(
        id=experiment_id,
        tenant_id=tenant_id,
        agent_id=agent_id,
        control_version=control_version,
        candidate_version=candidate_version,
        traffic=traffic,
        candidate_share=traffic,
        min_samples=min_samples,
        auto_promote=auto_promote,
        status=ExperimentStatus.RUNNING,
        state=ExperimentState.start(str(control_version), [str(candidate_version)]).to_json(),
        created_by_kind=author.kind,
        created_by_id=author.id,
    )


def version_of(experiment: RunningExperiment, arm: str) -> int:
    """The version ``arm`` of ``experiment`` runs."""
    return experiment.candidate_version if arm == CANDIDATE else experiment.control_version


def candidate_share(experiment: Experiment, state: ExperimentState, *, floor: float = MIN_SHARE) -> float:
    """The candidate's share of new subjects: ``traffic`` until every arm has ``min_samples`` scores, then Thompson.

    Thompson sampling runs over both arms (``shares`` with no reserved control share), seeded by
    the experiment id and its number of scores, so the same state gives the same share, kept
    within [``floor``, 1 - ``floor``] (``bench.optimizer --part two-arm`` compares floors).
    """
    rules = Rules(min_samples=experiment.min_samples, control_share=None, p_best_draws=0)
    if not adaptive(state, rules):
        return experiment.traffic
    seed = f"{experiment.id}/{sum(arm.n for arm in state.arms.values())}"
    share = shares(state, rules, random.Random(seed), ALLOCATION_DRAWS)[str(experiment.candidate_version)]  # noqa: S311
    return min(1.0 - floor, max(floor, share))


def state_of(experiment: Experiment) -> ExperimentState:
    """The statistics of ``experiment``, keyed by version (as text)."""
    return ExperimentState.from_json(experiment.state)


def rules_of(experiment: Experiment, *, p_best_draws: int = 0) -> Rules:
    """The decision rules of ``experiment`` (``p_best`` is not estimated unless asked)."""
    return Rules(min_samples=experiment.min_samples, p_best_draws=p_best_draws)


LATENCY_FLOOR_S = 1.0
"""Latency p50 below this counts as this for the guardrail: sub-second differences are noise, not harm."""

_OPS = text(
    "SELECT experiment_arm, count(*), count(*) FILTER (WHERE status = 'failed'),"
    " coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)), 0),"
    " coalesce(sum(cost_usd), 0)"
    " FROM run WHERE tenant_id = :tenant AND experiment_id = :experiment"
    " AND status IN ('completed', 'failed', 'cancelled') GROUP BY experiment_arm"
)

_ASSIGN = text(
    "WITH e AS (SELECT id, tenant_id, candidate_share FROM experiment"
    " WHERE id = :experiment AND tenant_id = :tenant AND status = 'running'),"
    " added AS (INSERT INTO experiment_assignment (experiment_id, subject_key, tenant_id, arm)"
    " SELECT id, :key, tenant_id, CASE WHEN :point < 1 - candidate_share THEN 'control' ELSE 'candidate' END"
    " FROM e ON CONFLICT (experiment_id, subject_key) DO NOTHING RETURNING arm)"
    " SELECT arm FROM added"
    " UNION ALL SELECT a.arm FROM experiment_assignment a JOIN e ON a.experiment_id = e.id WHERE a.subject_key = :key"
)
"""A new subject's arm recorded, or the arm recorded for it (nothing if the experiment is not running).

Another transaction's first run of the same subject makes the insert wait for it, then do nothing;
its row, committed after this statement's snapshot, is invisible to the read here: ``assign`` runs
the statement once more in that case.
"""


class ExperimentStore:
    """Experiments of one tenant; the caller commits."""

    def __init__(self, session: AsyncSession, tenant_id: str):
        if not tenant_id:
            raise ValueError("a tenant-scoped store needs a tenant id")
        self._session = session
        self._tenant_id = tenant_id

    async def get(self, experiment_id: str, *, lock: bool = False) -> Experiment | None:
        """The experiment ``experiment_id`` of this tenant (``lock``: FOR UPDATE)."""
        query = select(Experiment).where(Experiment.id == experiment_id, Experiment.tenant_id == self._tenant_id)
        # FOR NO KEY UPDATE: new assignments (whose foreign key takes FOR KEY SHARE) do not wait for feedback
        return (await self._session.exec(query.with_for_update(key_share=True) if lock else query)).first()

    async def assign(self, experiment_id: str, key: str) -> str | None:
        """The arm of subject (else thread) ``key`` in a running experiment: recorded on its first run, then kept.

        None when the experiment is not running (any more). One statement; two when a concurrent
        first run of the same ``key`` committed in between.
        """
        point = hash_point(experiment_id, key)
        params = {"experiment": experiment_id, "tenant": self._tenant_id, "key": key, "point": point}
        for _ in range(2):
            arm = (await self._session.exec(_ASSIGN, params=params)).scalar()  # type: ignore[call-overload]
            if arm is not None:
                return str(arm)
        return None

    async def running(self, agent_id: str) -> Experiment | None:
        """The running experiment of an agent, if any."""
        query = select(Experiment).where(
            Experiment.tenant_id == self._tenant_id,
            Experiment.agent_id == agent_id,
            Experiment.status == ExperimentStatus.RUNNING,
        )
        return (await self._session.exec(query)).first()

    async def of_agent(self, agent_id: str, *, limit: int, after: Keyset | None = None) -> Sequence[Experiment]:
        """An agent's experiments, newest first."""
        query = select(Experiment).where(Experiment.tenant_id == self._tenant_id, Experiment.agent_id == agent_id)
        query = newest_first(query, col(Experiment.created_at), col(Experiment.id), after)
        rows: Sequence[Experiment] = (await self._session.exec(query.limit(limit))).all()
        return rows

    async def create(
        self,
        agent: Agent,
        *,
        candidate_version: int,
        traffic: float,
        min_samples: int,
        auto_promote: bool,
        author: Author,
    ) -> Experiment:
        """A running experiment of ``agent`` (whose row the caller locked) against ``candidate_version``.

        Raises:
            ExperimentRunning: the agent already has one.
        """
        running = await self.running(agent.id)
        if running is not None:
            raise ExperimentRunning(running.id)
        experiment = running_experiment(
            new_id("exp"),
            self._tenant_id,
            agent.id,
            control_version=agent.version,
            candidate_version=candidate_version,
            traffic=traffic,
            min_samples=min_samples,
            auto_promote=auto_promote,
            author=author,
        )
        self._session.add(experiment)
        return experiment

    def end(self, experiment: Experiment, status: ExperimentStatus, outcome: Outcome, reason: str) -> None:
        """Mark ``experiment`` ended with ``status``, ``outcome`` and ``reason``."""
        experiment.status, experiment.decision, experiment.reason = status, outcome, reason
        experiment.updated_at = experiment.ended_at = utcnow()
        self._session.add(experiment)

    async def ops(self, experiment: Experiment) -> dict[str, OpsStats]:
        """Each arm's finished runs as operations (runs, failures, latency p50 at least ``LATENCY_FLOOR_S``, cost)."""
        rows = await self._session.exec(  # type: ignore[call-overload]
            _OPS, params={"tenant": self._tenant_id, "experiment": experiment.id}
        )
        found = {
            arm: OpsStats(int(n), int(failed), max(float(p50), LATENCY_FLOOR_S), float(cost))
            for arm, n, failed, p50, cost in rows
        }
        empty = OpsStats(0, 0, 0.0, 0.0)
        return {arm: found.get(arm, empty) for arm in ARMS}

    async def learn(self, run: Run, score: float) -> Experiment | None:
        """Count a feedback ``score`` on ``run`` for its arm, then apply guardrails and the decision.

        Returns the experiment if this ended it (the agent's current version may have changed).
        """
        if run.experiment_id is None:
            return None
        experiment = await self.get(run.experiment_id, lock=True)
        if experiment is None or experiment.status != ExperimentStatus.RUNNING:
            return None
        state = state_of(experiment).record(str(run.agent_version), score)
        experiment.state, experiment.updated_at = state.to_json(), utcnow()
        self._session.add(experiment)
        ops = await self.ops(experiment)
        breach = guardrail_breach(ops[CONTROL], ops[CANDIDATE], GuardrailLimits(min_runs=experiment.min_samples))
        if breach is not None:
            self.end(experiment, ExperimentStatus.ROLLED_BACK, Outcome.ROLLBACK, f"guardrail: {breach}")
            return experiment
        decision = decide(state, rules_of(experiment), random.Random(0))  # noqa: S311 (no secret)
        if not decision.stop:
            experiment.reason = decision.reason
            experiment.candidate_share = candidate_share(experiment, state)
            return None
        await self._conclude(experiment, decision)
        return experiment

    async def _conclude(self, experiment: Experiment, decision: Decision) -> None:
        if decision.winner is None:
            self.end(experiment, ExperimentStatus.STOPPED, Outcome.KEEP, decision.reason)
            return
        if not experiment.auto_promote:
            self.end(experiment, ExperimentStatus.STOPPED, Outcome.WINNER, decision.reason)
            return
        agents = AgentRepository(self._session, self._tenant_id)
        agent = await agents.get_any(experiment.agent_id, lock=True)
        version = await agents.get_version(experiment.agent_id, experiment.candidate_version)
        if agent is None or version is None:
            self.end(experiment, ExperimentStatus.STOPPED, Outcome.WINNER, decision.reason)
            return
        agents.promote(agent, version)
        self.end(experiment, ExperimentStatus.PROMOTED, Outcome.PROMOTE, decision.reason)
