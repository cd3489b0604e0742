"""Activities of a counterfactual replay: replay one recorded run, record the replay's status.

``replay.run`` reads the run's recording (``core.optimizer.recordings``), runs the candidate
version on its input with ``run_candidate``, every tool call answered by a
``RecordingAnswerer`` **without a fallback**: a call whose name and arguments match the
recording gets the recorded answer, any other gets ``error: not in recording: …`` and is
counted. Nothing runs, so a replay has no side effects and makes no live tool call. With a
metric, the recorded output and the candidate's are scored alike (on the run's input). The
result is written to ``replay_result`` (a retry writes it again); the workflow gets only the
scores and counts.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.candidates import CandidateAccess, CandidateSetup
from activities.errors import classify_database_errors
from activities.heartbeat import heartbeating
from core.contracts.llm import Usage
from core.contracts.replay import ReplayedRun, ReplayRecordInput, ReplayRunInput
from core.db.models import ReplayResult
from core.optimizer.metrics import METRIC, Score
from core.optimizer.recordings import Recording, read_recording
from core.optimizer.replay_store import ReplayStore
from core.optimizer.tool_answers import RecordingAnswerer


class ReplayActivities:
    """The replay's activities over the database, the model providers and the tenant's tools' schemas."""

    def __init__(self, engine: AsyncEngine, access: CandidateAccess, *, agent_max_steps: int):
        self._engine = engine
        self._store = ReplayStore(engine)
        self._access = access
        self._max_steps = agent_max_steps

    def all(self) -> list[Any]:
        """Every activity callable, for the worker."""
        return [self.run, self.record]

    @activity.defn(name="replay.run")
    @classify_database_errors
    async def run(self, inp: ReplayRunInput) -> ReplayedRun:
        """Replay one recorded run with the candidate version; its result is written, its scores returned.

        It heartbeats from its first statement to its last: a gap (a slow read of the recording)
        longer than the heartbeat timeout would let Temporal start a second attempt beside this one.
        """
        async with heartbeating():
            return await self._replay(inp)

    async def _replay(self, inp: ReplayRunInput) -> ReplayedRun:
        recording = await read_recording(self._engine, inp.tenant_id, inp.run_id)
        if recording is None or recording.agent_id != inp.agent_id:
            error = {"type": "RunNotFound", "message": f"run {inp.run_id} of agent {inp.agent_id} not found"}
            result = ReplayResult(
                tenant_id=inp.tenant_id,
                replay_id=inp.replay_id,
                run_id=inp.run_id,
                outcome="failed",
                tool_calls=[],
                error=error,
            )
            await self._store.put_result(result)
            return ReplayedRun(inp.run_id, "failed")
        setup = await self._access.setup(inp.tenant_id, inp.agent_id, inp.version)
        answerer = RecordingAnswerer(recording.tool_calls)
        out = await self._access.run(setup, recording.input, answerer, max_steps=self._max_steps)
        usage = out.usage
        recorded = candidate = None
        if inp.metric is not None:
            recorded, judged = await self._score(inp, setup, recording, recording.output)
            usage = usage.add(judged)
            candidate, judged = await self._score(inp, setup, recording, out.output)
            usage = usage.add(judged)
        result = ReplayResult(
            tenant_id=inp.tenant_id,
            replay_id=inp.replay_id,
            run_id=inp.run_id,
            outcome=out.outcome,
            recorded_output=recording.output,
            candidate_output=out.output,
            recorded_score=recorded.value if recorded else None,
            recorded_reason=recorded.reason if recorded else None,
            candidate_score=candidate.value if candidate else None,
            candidate_reason=candidate.reason if candidate else None,
            from_recording=out.count("recording"),
            not_in_recording=len(answerer.unmatched),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=usage.cost_usd,
            tool_calls=[asdict(call) for call in out.tool_calls],
        )
        await self._store.put_result(result)
        return ReplayedRun(
            run_id=inp.run_id,
            outcome=out.outcome,
            recorded_score=result.recorded_score,
            candidate_score=result.candidate_score,
            from_recording=result.from_recording,
            not_in_recording=result.not_in_recording,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=usage.cost_usd,
        )

    async def _score(
        self, inp: ReplayRunInput, setup: CandidateSetup, recording: Recording, output: str | None
    ) -> tuple[Score | None, Usage]:
        """The metric's score of one output (none for a recorded run without an output)."""
        if output is None:
            return None, Usage()
        metric = METRIC.validate_python(inp.metric)
        return await self._access.score(inp.tenant_id, metric, setup, output=output, input=recording.input)

    @activity.defn(name="replay.record")
    @classify_database_errors
    async def record(self, inp: ReplayRecordInput) -> None:
        """Write the replay's status (and its summary or error) to its row."""
        await self._store.set_status(inp.tenant_id, inp.replay_id, inp.status, summary=inp.summary, error=inp.error)
