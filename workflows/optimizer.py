"""``OptimizerWorkflow``: baseline, candidates, successive halving on validation, confirmation on test, promotion.

0. A schedule's start has no run id: ``optimizer.begin_scheduled`` records the run over a fresh
   dataset of the agent's latest feedback (a fire that cannot run is recorded failed and ends here).
1. ``prepare``: the dataset's example ids by split.
2. The baseline is scored on (a budget share of) the training split, for the strategies.
3. ``propose``: the strategies' candidates, each stored as an optimizer version (not current).
4. Successive halving (``core.optimizer.stats.halving_plan``) over the candidates on the
   validation split: each rung scores its survivors on the first examples of the split
   (evaluations already made are not repeated) and keeps the best ``1/eta``; on equal scores
   the older version stays. The baseline is scored on validation with what is left, for the record.
5. The best on validation is compared with the baseline on the test split (examples that chose
   nothing), paired by example; it is promoted only when the interval of the difference is above
   the minimum effect and the run says ``auto_promote``. The reason is always recorded.

Evaluations run as ``optimizer.evaluate`` activities of one version on a batch of examples,
at most ``concurrency`` in flight, on the tenant's fairness key. The budget is checked before
each batch: a batch never takes the run past ``max_evals`` (it is cut), and none starts once
``max_cost_usd`` is spent. Test evaluations are reserved from the start. A cancelled run records
``cancelled``; a long one continues as new with what it scored (nothing is evaluated twice).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.optimizer import OptimizerActivities
    from activities.optimizer_schedule import ScheduledOptimizerActivities
    from core.contracts.optimizer import (
        OPTIMIZER_FAILED,
        PROGRESS_QUERY,
        WORKFLOW_NAME,
        CandidateRecord,
        Carried,
        Evaluated,
        EvaluateInput,
        OptimizerRunInput,
        OptimizerRunStatus,
        Prepared,
        PrepareInput,
        PromoteInput,
        ProposeInput,
        RecordInput,
        ScheduledBegun,
        ScheduledStart,
    )
    from core.optimizer.stats import halving_plan, mean_interval, paired_comparison, survivors
    from workflows._helpers import recorded_outcome, tenant_activity

BASELINE = "baseline"
TRAIN_SHARE = 5
"""At most 1/TRAIN_SHARE of the evaluation budget scores the baseline on the training split."""
TEST_SHARE = 5
"""At most 1/TEST_SHARE of the budget goes to each of the baseline and the chosen one on the test split."""


class _BudgetSpentError(Exception):
    """The budget is spent: the run decides with what it has."""


@workflow.defn(name=WORKFLOW_NAME)
class OptimizerWorkflow:
    """One optimizer run; see the module docstring."""

    def __init__(self) -> None:
        self._inp: OptimizerRunInput | None = None
        self._state = Carried()
        self._phase = "queued"
        self._stopped: str | None = None
        self._slots: asyncio.Semaphore | None = None

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> dict[str, Any]:
        """Where the run is: its phase, the evaluations and cost spent of the budget, its candidates, and the tool
        calls of its evaluations answered from recordings or not in them."""
        assert self._inp is not None
        spent = self._state.spent
        return {
            "phase": self._phase,
            "evals_used": spent.evals,
            "evals_paid": spent.paid,
            "max_evals": self._inp.max_evals,
            "cost_usd": round(spent.cost_usd, 8),
            "max_cost_usd": self._inp.max_cost_usd,
            "candidates": len(self._state.candidates or []),
            "from_recording": spent.from_recording,
            "not_in_recording": spent.not_in_recording,
            "evals_with_new_calls": spent.evals_with_new_calls,
        }

    @workflow.run
    async def run(self, inp: OptimizerRunInput) -> dict[str, Any]:
        """Optimize; the outcome (``status``, ``winner``, ``promoted``, ``reason``)."""
        self._inp = inp
        if not inp.run_id:
            inp = self._inp = await self._begin_scheduled(inp)
        self._state = inp.carried or Carried()
        self._slots = asyncio.Semaphore(inp.concurrency)

        async def cancelled() -> None:
            await self._record(OptimizerRunStatus.CANCELLED, reason="cancelled")

        async def failed(error: dict[str, str]) -> None:
            await self._record(OptimizerRunStatus.FAILED, reason=f"failed: {error['message']}", error=error)

        return await recorded_outcome(
            self._optimize(inp), cancelled=cancelled, failed=failed, failure_type=OPTIMIZER_FAILED
        )

    async def _begin_scheduled(self, inp: OptimizerRunInput) -> OptimizerRunInput:
        """A schedule's start: record the run over a fresh dataset; a fire that cannot run was recorded failed."""
        begun: ScheduledBegun = await self._activity(
            ScheduledOptimizerActivities.begin_scheduled,
            ScheduledStart(
                inp.tenant_id,
                inp.agent_id,
                inp.schedule_id,
                workflow.info().workflow_id,
                inp.max_evals,
                inp.max_cost_usd,
                inp.strategies,
                inp.auto_promote,
            ),
            ScheduledBegun,
        )
        if begun.error is not None:
            raise ApplicationError(begun.error["message"], type=begun.error["type"], non_retryable=True)
        return replace(
            inp,
            run_id=begun.run_id,
            dataset_id=begun.dataset_id,
            baseline_version=begun.baseline_version,
            metric=begun.metric,
            seed=begun.seed,
        )

    async def _optimize(self, inp: OptimizerRunInput) -> dict[str, Any]:
        state = self._state
        if state.prepared is None:
            self._phase = "preparing"
            state.prepared = await self._activity(
                OptimizerActivities.prepare,
                PrepareInput(inp.tenant_id, inp.run_id, inp.agent_id, inp.dataset_id, inp.baseline_version),
                Prepared,
            )
        prepared = state.prepared
        n_train = min(len(prepared.train), max(1, inp.max_evals // TRAIN_SHARE))
        n_test = min(len(prepared.test), inp.max_evals // TEST_SHARE)
        baseline = inp.baseline_version
        self._phase = "baseline"
        await _settle(self._scores(baseline, prepared.train[:n_train]))
        train = _among(self._state.scores.get(str(baseline), {}), prepared.train[:n_train])
        self._continue_if_long(inp)
        if state.candidates is None:
            self._phase = "proposing"
            proposed = await self._activity(
                OptimizerActivities.propose,
                ProposeInput(
                    inp.tenant_id,
                    inp.run_id,
                    inp.agent_id,
                    baseline,
                    inp.dataset_id,
                    train,
                    inp.metric,
                    inp.strategies,
                    inp.candidates_per_strategy,
                    inp.seed,
                    inp.evaluation,
                ),
                list[CandidateRecord],
            )
            state.candidates = [CandidateRecord(baseline, BASELINE, "the current version", stage=BASELINE), *proposed]
        await self._record(OptimizerRunStatus.RUNNING)
        self._continue_if_long(inp)
        chosen = await self._halving(inp, prepared.validation, reserve=2 * n_test)
        self._continue_if_long(inp)
        return await self._decide(inp, chosen, prepared.test[:n_test])

    async def _halving(self, inp: OptimizerRunInput, validation: list[str], *, reserve: int) -> int:
        """The best candidate on validation by successive halving within the budget left (``reserve`` kept).

        The baseline is not among the arms: the test split, not a noisy early rung, decides whether
        a candidate beats it. It is scored on validation too, with what the halving leaves, for the record.
        """
        self._phase = "halving"
        records = self._records()
        arms = [c.version for c in records.values() if c.version != inp.baseline_version]
        room = inp.max_evals - self._state.spent.evals - reserve
        arms = arms[: max(room, 0)]
        if not arms or not validation:
            return inp.baseline_version
        plan = halving_plan(len(arms), len(validation), budget_evals=room)
        alive = arms
        for index, rung in enumerate(plan.rungs):
            ids = validation[: rung.examples]
            for version in alive:
                records[version].stage = "halving"
            stopped = await _settle(*(self._scores(version, ids) for version in alive))
            self._summarize(records, validation)
            if stopped:
                break
            if index + 1 < len(plan.rungs):
                means = {_key(v): _mean(self._state.scores.get(str(v), {}), ids) for v in alive}
                keep = survivors(means, plan.rungs[index + 1].candidates)
                for version in alive:
                    if _key(version) not in keep:
                        records[version].stage = "stopped"
                alive = [v for v in alive if _key(v) in keep]
                await self._record(OptimizerRunStatus.RUNNING)
                self._continue_if_long(inp)
        room = inp.max_evals - self._state.spent.evals - reserve
        if room > 0:
            await _settle(self._scores(inp.baseline_version, validation[:room]))
            self._summarize(records, validation)
        scored = {_key(v): records[v].score for v in alive}
        best = survivors({k: s for k, s in scored.items() if s is not None}, 1)
        if not best:
            return inp.baseline_version
        chosen = int(best[0])
        records[chosen].stage = "chosen"
        return chosen

    async def _decide(self, inp: OptimizerRunInput, chosen: int, test: list[str]) -> dict[str, Any]:
        """Confirm ``chosen`` against the baseline on ``test``; promote on a significant win; record why."""
        baseline = inp.baseline_version
        winner: int | None = None
        promoted = False
        if chosen == baseline:
            reason = "no candidate was scored on the validation split"
        elif not test:
            reason = f"v{chosen} was best on validation, but the budget left no test examples to confirm it"
        else:
            self._phase = "testing"
            await _settle(self._scores(baseline, test), self._scores(chosen, test))
            base = _among(self._state.scores.get(str(baseline), {}), test)
            candidate = _among(self._state.scores.get(str(chosen), {}), test)
            if not base.keys() & candidate.keys():
                reason = f"v{chosen} was best on validation, but the budget stopped before its test"
            else:
                comparison = paired_comparison(candidate, base, min_effect=inp.min_effect, seed=inp.seed, split="test")
                self._records()[chosen].stage = "tested"
                winner = chosen
                verdict = "not promoted"
                if comparison.significant and not inp.auto_promote:
                    verdict = "not promoted (auto_promote is off)"
                elif comparison.significant:
                    promoted = await self._activity(
                        OptimizerActivities.promote,
                        PromoteInput(inp.tenant_id, inp.run_id, inp.agent_id, chosen, baseline),
                        bool,
                    )
                    verdict = "promoted" if promoted else "not promoted: the agent's current version changed"
                reason = f"v{chosen} vs v{baseline}: {comparison.reason}; {verdict}"
        if self._stopped:
            reason = f"{reason} ({self._stopped})"
        self._phase = "completed"
        await self._record(OptimizerRunStatus.COMPLETED, winner=winner, reason=reason)
        return {"status": "completed", "winner": winner, "promoted": promoted, "reason": reason}

    def _records(self) -> dict[int, CandidateRecord]:
        return {c.version: c for c in self._state.candidates or []}

    def _summarize(self, records: dict[int, CandidateRecord], validation: list[str]) -> None:
        """Each version's validation mean, interval and ``n`` so far."""
        assert self._inp is not None
        for version, record in records.items():
            scored = self._state.scores.get(str(version), {})
            values = [scored[i] for i in validation if i in scored]
            if values:
                interval = mean_interval(values, seed=self._inp.seed)
                record.score, record.ci, record.n = interval.mean, [interval.lo, interval.hi], interval.n

    async def _scores(self, version: int, ids: list[str]) -> dict[str, float]:
        """``version``'s scores on ``ids``, evaluating the ones not scored yet in batches within the budget.

        Raises:
            _BudgetSpentError: the budget ran out before every example was scored.
        """
        assert self._inp is not None
        assert self._slots is not None
        inp = self._inp
        known = self._state.scores.setdefault(str(version), {})
        todo = [i for i in ids if i not in known]
        batches = [todo[k : k + inp.batch_size] for k in range(0, len(todo), inp.batch_size)]

        async def one(batch: list[str]) -> None:
            async with self._slots:  # type: ignore[union-attr]
                spent = self._state.spent
                if spent.cost_usd >= inp.max_cost_usd:
                    self._stopped = f"stopped at the cost budget of ${inp.max_cost_usd:g}"
                    raise _BudgetSpentError
                room = inp.max_evals - spent.evals
                if room < len(batch):
                    self._stopped = f"stopped at the budget of {inp.max_evals} evaluations"
                    batch = batch[: max(room, 0)]
                if not batch:
                    raise _BudgetSpentError
                spent.evals += len(batch)  # reserved before the batch starts, so parallel batches cannot pass it
                result = await self._activity(
                    OptimizerActivities.evaluate,
                    EvaluateInput(
                        inp.tenant_id,
                        inp.run_id,
                        inp.agent_id,
                        version,
                        inp.dataset_id,
                        batch,
                        inp.metric,
                        inp.evaluation,
                    ),
                    Evaluated,
                    heartbeat=True,
                )
                spent.add(replace(result.spent, evals=0))
                known.update(result.scores)

        await _settle(*(one(b) for b in batches))
        if any(i not in known for i in ids):
            raise _BudgetSpentError
        return {i: known[i] for i in ids}

    async def _activity(self, fn: Any, arg: Any, result_type: Any, *, heartbeat: bool = False) -> Any:
        assert self._inp is not None
        return await tenant_activity(self._inp, fn, arg, result_type, heartbeat=heartbeat)

    async def _record(
        self,
        status: OptimizerRunStatus,
        *,
        winner: int | None = None,
        reason: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        assert self._inp is not None
        await self._activity(
            OptimizerActivities.record,
            RecordInput(
                self._inp.tenant_id,
                self._inp.run_id,
                status.value,
                self.progress(),
                list(self._state.candidates or []),
                self._state.spent,
                winner=winner,
                reason=reason,
                error=error,
            ),
            type(None),
        )

    def _continue_if_long(self, inp: OptimizerRunInput) -> None:
        """Continue as new with everything scored so far when the history grows long.

        The new run replays the same decisions from the scores it carries (nothing scored is
        evaluated again), then goes on where this one stopped.
        """
        info = workflow.info()
        long = 0 < inp.history_limit <= info.get_current_history_length()
        if long or info.is_continue_as_new_suggested():
            workflow.continue_as_new(replace(inp, carried=self._state))


def _key(version: int) -> str:
    """A version as a ranking key: on equal scores the older version ranks first."""
    return f"{version:09d}"


def _mean(scores: dict[str, float], ids: list[str]) -> float:
    values = [scores[i] for i in ids if i in scores]
    return sum(values) / len(values) if values else 0.0


def _among(scores: dict[str, float], ids: list[str]) -> dict[str, float]:
    return {i: scores[i] for i in ids if i in scores}


async def _settle(*work: Any) -> bool:
    """Await all of ``work``; whether the budget stopped any (another error is raised once all have ended)."""
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, _BudgetSpentError):
            raise outcome
    return any(isinstance(outcome, _BudgetSpentError) for outcome in outcomes)
