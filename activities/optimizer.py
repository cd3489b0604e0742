"""Activities of an optimizer run: prepare, evaluate, propose, record, promote.

- ``prepare`` reads the dataset's example ids by split and the baseline's content hash, and
  marks the run ``running``.
- ``evaluate`` scores one configuration (an agent version) on a batch of examples: each
  example is read from the cache first (``core.optimizer.run_store.EvalCache``, keyed by the
  configuration's content hash, the example id and the metric's hash with the run's evaluation);
  the others run with ``run_candidate``, their tool calls answered, under the ``safe``
  evaluation, from the example's source run when it has one (``RecordingAnswerer`` falling back
  to ``SafeToolAnswerer``), else by ``SafeToolAnswerer`` alone; under ``replay``, by the source
  run's recording alone (a counterfactual replay: nothing runs, any other call is "not in
  recording"). Each is scored by the metric (a judge metric calls its model, or the agent's) and
  kept in the cache with its tool-call counts as soon as it is scored, so a retried activity
  never pays twice. It heartbeats from start to end.
- ``propose`` runs the chosen strategies on the baseline's scored training examples (a
  reflective strategy's ``reflect`` calls the agent's model) and stores each new configuration
  as an agent version created by the optimizer, not current; the versions are recorded on the
  run in the same transaction, so a retried proposal returns them rather than adding more.
- ``record`` writes the projection; ``promote`` makes the winner current when the agent's
  current version is still the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.candidates import CandidateAccess, provider_error
from activities.errors import classify_database_errors
from activities.heartbeat import heartbeating
from activities.model_access import ModelAccess
from core.agents import AgentConfig
from core.contracts.llm import ChatMessage, LlmRequest
from core.contracts.optimizer import (
    OPTIMIZER_FAILED,
    STRATEGY_FAILED,
    CandidateRecord,
    Evaluated,
    EvaluateInput,
    Evaluation,
    OptimizerRunStatus,
    Prepared,
    PrepareInput,
    PromoteInput,
    ProposeInput,
    RecordInput,
    Spent,
)
from core.db.engine import make_sessionmaker
from core.db.models import DatasetExample, OptimizerEval, OptimizerRun
from core.db.repos import AgentRepository, Author
from core.llm.base import ProviderError
from core.optimizer.dataset_store import DatasetStore
from core.optimizer.metrics import METRIC
from core.optimizer.recordings import read_recording
from core.optimizer.run_store import EvalCache, OptimizerRunStore, content_hash, metric_key
from core.optimizer.strategies import strategy
from core.optimizer.strategies.base import ScoredExample, StrategyContext
from core.optimizer.tool_answers import RecordingAnswerer, SafeToolAnswerer, ToolAnswerer
from core.tools.base import ToolResolver

log = structlog.get_logger(__name__)
_MAX_EXAMPLES = 1_000_000


def _failed(message: str, kind: str = OPTIMIZER_FAILED) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


class OptimizerActivities:
    """The optimizer's activities over the database, the model providers and the tenant's tools."""

    def __init__(self, engine: AsyncEngine, models: ModelAccess, tools: ToolResolver, *, agent_max_steps: int):
        self._engine = engine
        self._sessions = make_sessionmaker(engine)
        self._runs = OptimizerRunStore(engine)
        self._models = models
        self._tools = tools
        self._access = CandidateAccess(models, tools)
        self._max_steps = agent_max_steps

    def all(self) -> list[Any]:
        """Every activity callable, for the worker."""
        return [self.prepare, self.evaluate, self.propose, self.record, self.promote]

    @activity.defn(name="optimizer.prepare")
    @classify_database_errors
    async def prepare(self, inp: PrepareInput) -> Prepared:
        """The dataset's example ids by split and the baseline's content hash; the run is ``running``."""
        async with self._sessions() as session:
            store = DatasetStore(session, inp.tenant_id)
            dataset = await store.get(inp.dataset_id)
            if dataset is None or dataset.agent_id != inp.agent_id:
                raise _failed(f"dataset {inp.dataset_id} of agent {inp.agent_id} not found")
            rows = await store.examples(inp.dataset_id, limit=_MAX_EXAMPLES)
        config = await self._models.config(inp.tenant_id, inp.agent_id, inp.baseline_version)
        await self._runs.set_status(inp.tenant_id, inp.run_id, OptimizerRunStatus.RUNNING)
        by_split: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
        for row in rows:
            by_split[row.split].append(row.example_id)
        return Prepared(
            dataset_hash=dataset.hash,
            train=by_split["train"],
            validation=by_split["validation"],
            test=by_split["test"],
            baseline_hash=config_hash(config),
        )

    @activity.defn(name="optimizer.evaluate")
    @classify_database_errors
    async def evaluate(self, inp: EvaluateInput) -> Evaluated:
        """Scores of one version on a batch of examples: cached ones read, the others run, scored and kept.

        It heartbeats from its first statement to its last: a gap (slow reads) longer than the
        heartbeat timeout would let Temporal start a second attempt beside this one.
        """
        async with heartbeating():
            return await self._evaluate(inp)

    async def _evaluate(self, inp: EvaluateInput) -> Evaluated:
        config = await self._models.config(inp.tenant_id, inp.agent_id, inp.version)
        metric = METRIC.validate_python(inp.metric)
        chash, mhash = config_hash(config), metric_key(inp.metric, inp.evaluation)
        cache = EvalCache(self._engine, inp.tenant_id)
        cached = await cache.get(chash, mhash, inp.example_ids)
        spent = Spent(evals=len(inp.example_ids))
        for row in cached.values():
            spent.add(_tool_calls(row))
        scores = {i: row.score for i, row in cached.items()}
        missing = [i for i in inp.example_ids if i not in cached]
        if missing:
            examples = await self._examples(inp.tenant_id, inp.dataset_id, missing)
            setup = await self._access.resolve(inp.tenant_id, config)
            for example_id in missing:
                example = examples.get(example_id)
                if example is None:
                    raise _failed(f"example {example_id} is not in dataset {inp.dataset_id}")
                answerer = await self._answerer(inp, example)
                out = await self._access.run(setup, example.input, answerer, max_steps=self._max_steps)
                score, judged = await self._access.score(
                    inp.tenant_id,
                    metric,
                    setup,
                    output=out.output,
                    expected=example.expected,
                    input=example.input,
                    rubric=example.rubric,
                )
                usage = out.usage.add(judged)
                row = OptimizerEval(
                    tenant_id=inp.tenant_id,
                    config_hash=chash,
                    example_id=example_id,
                    metric_hash=mhash,
                    score=score.value,
                    reason=score.reason,
                    output=out.output,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=usage.cost_usd,
                    from_recording=out.count("recording"),
                    not_in_recording=len(answerer.unmatched) if isinstance(answerer, RecordingAnswerer) else 0,
                )
                await cache.put([row])
                scores[example_id] = score.value
                paid = Spent(
                    paid=1, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost_usd=usage.cost_usd
                )
                spent.add(paid)
                spent.add(_tool_calls(row))
                activity.heartbeat(example_id)
        return Evaluated(scores={i: scores[i] for i in inp.example_ids}, spent=spent)

    async def _examples(self, tenant_id: str, dataset_id: str, ids: Sequence[str]) -> dict[str, DatasetExample]:
        async with self._sessions() as session:
            query = select(DatasetExample).where(
                DatasetExample.tenant_id == tenant_id,
                DatasetExample.dataset_id == dataset_id,
                col(DatasetExample.example_id).in_(list(ids)),
            )
            return {row.example_id: row for row in (await session.exec(query)).all()}

    async def _answerer(self, inp: EvaluateInput, example: DatasetExample) -> ToolAnswerer:
        """Who answers the example's tool calls, by ``inp.evaluation``.

        ``replay``: its source run's recording alone (nothing runs; any other call is "not in
        recording"). ``safe``: that recording then a safe live call, or a safe live call alone for an
        example without one.
        """
        recording = None
        if example.source_run_id is not None:
            recording = await read_recording(self._engine, inp.tenant_id, example.source_run_id)
        recorded = recording.tool_calls if recording is not None else None
        if inp.evaluation == Evaluation.REPLAY:
            return RecordingAnswerer(recorded or [])
        safe = SafeToolAnswerer(self._tools, inp.tenant_id, run_id=f"{inp.run_id}:{example.example_id}")
        return safe if recorded is None else RecordingAnswerer(recorded, fallback=safe)

    @activity.defn(name="optimizer.propose")
    @classify_database_errors
    async def propose(self, inp: ProposeInput) -> list[CandidateRecord]:
        """The run's candidates as new optimizer versions (not current); the ones already proposed on a retry."""
        known = await self._runs.get(inp.tenant_id, inp.run_id)
        if known is None:
            raise _failed(f"optimizer run {inp.run_id} not found")
        if known.candidates:
            return [CandidateRecord(**c) for c in known.candidates if c["strategy"] != "baseline"]
        baseline = await self._models.config(inp.tenant_id, inp.agent_id, inp.baseline_version)
        train = await self._scored_train(inp, baseline)
        reflect = self._reflect(inp.tenant_id, baseline)
        proposed: list[tuple[AgentConfig, str, str]] = []
        seen = {config_hash(baseline)}
        for name in inp.strategies:
            context = StrategyContext(baseline=baseline, train=train, count=inp.count, seed=inp.seed, reflect=reflect)
            try:
                candidates = await strategy(name).propose(context)
            except ProviderError as exc:
                raise provider_error(exc, what=f"strategy {name}: ") from exc
            except ApplicationError:
                raise
            except Exception as exc:
                raise _failed(f"strategy {name} failed: {exc}", STRATEGY_FAILED) from exc
            for candidate in candidates:
                key = config_hash(candidate.config)
                if key not in seen:
                    seen.add(key)
                    proposed.append((candidate.config, candidate.strategy, candidate.note))
            activity.heartbeat(name)
        return await self._store_versions(inp, proposed)

    async def _scored_train(self, inp: ProposeInput, baseline: AgentConfig) -> list[ScoredExample]:
        ids = list(inp.train_scores)
        examples = await self._examples(inp.tenant_id, inp.dataset_id, ids)
        key = metric_key(inp.metric, inp.evaluation)
        cached = await EvalCache(self._engine, inp.tenant_id).get(config_hash(baseline), key, ids)
        return [
            ScoredExample(
                example_id=i,
                input=examples[i].input,
                expected=examples[i].expected,
                output=cached[i].output if i in cached else "",
                score=inp.train_scores[i],
                reason=cached[i].reason if i in cached else None,
            )
            for i in ids
            if i in examples
        ]

    def _reflect(self, tenant_id: str, baseline: AgentConfig) -> Any:
        model = baseline.model.to_contract()
        provider = self._models.provider(model.provider)

        async def reflect(prompt: str) -> str:
            api_key = await self._models.api_key(tenant_id, model)
            request = LlmRequest(model=model, messages=[ChatMessage(role="user", content=prompt)], api_key=api_key)
            return (await provider.complete(request)).content

        return reflect

    async def _store_versions(
        self, inp: ProposeInput, proposed: Sequence[tuple[AgentConfig, str, str]]
    ) -> list[CandidateRecord]:
        """The proposals as versions of the agent and as the run's candidates, in one transaction."""
        records: list[CandidateRecord] = []
        async with self._sessions() as session:
            repo = AgentRepository(session, inp.tenant_id)
            agent = await repo.get_any(inp.agent_id, lock=True)
            if agent is None:
                raise _failed(f"agent {inp.agent_id} not found")
            author = Author(kind="optimizer", id=inp.run_id)
            for config, name, note in proposed:
                version = await repo.add_version(agent, config, author, promote=False)
                await session.flush()
                records.append(CandidateRecord(version=version.version, strategy=name, note=note))
            baseline = CandidateRecord(
                version=inp.baseline_version, strategy="baseline", note="the current version", stage="baseline"
            )
            await session.exec(
                update(OptimizerRun)
                .where(col(OptimizerRun.tenant_id) == inp.tenant_id, col(OptimizerRun.id) == inp.run_id)
                .values(candidates=[asdict(c) for c in [baseline, *records]])
            )
            await session.commit()
        return records

    @activity.defn(name="optimizer.record")
    @classify_database_errors
    async def record(self, inp: RecordInput) -> None:
        """Write the run's progress, candidates, spending and outcome to the projection."""
        await self._runs.record(
            inp.tenant_id,
            inp.run_id,
            status=inp.status,
            progress=inp.progress,
            candidates=inp.candidates,
            spent=inp.spent,
            winner=inp.winner,
            reason=inp.reason,
            error=inp.error,
        )

    @activity.defn(name="optimizer.promote")
    @classify_database_errors
    async def promote(self, inp: PromoteInput) -> bool:
        """Make ``version`` current if the agent is live and still at the baseline; whether it is current now."""
        async with self._sessions() as session:
            repo = AgentRepository(session, inp.tenant_id)
            agent = await repo.get_any(inp.agent_id, lock=True)
            if agent is None or agent.deleted_at is not None:
                return False
            if agent.version != inp.version:
                if agent.version != inp.baseline_version:
                    return False
                version = await repo.get_version(inp.agent_id, inp.version)
                if version is None:
                    return False
                repo.promote(agent, version)
                await session.commit()
        await self._runs.mark_promoted(inp.tenant_id, inp.run_id)
        return True


def _tool_calls(row: OptimizerEval) -> Spent:
    """An evaluation's tool calls answered from its recording or not in it, as a ``Spent`` to add."""
    return Spent(
        from_recording=row.from_recording,
        not_in_recording=row.not_in_recording,
        evals_with_new_calls=1 if row.not_in_recording else 0,
    )


def config_hash(config: AgentConfig) -> str:
    """The content hash of a configuration: equal configurations share their cached evaluations."""
    return content_hash(config.model_dump(mode="json"))
