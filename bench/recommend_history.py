"""Synthetic run histories for the recommendation engine: bulk-written runs, steps, feedback and pipeline runs.

:class:`HistoryWriter` buffers rows in the shapes the workers write (``run``, ``run_step``,
``run_feedback``, ``pipeline_run``, ``pipeline_run_step``) and copies them into PostgreSQL
with ``COPY`` (hundreds of thousands of rows in seconds). The ``*_run`` functions make one run
of a scenario from a seeded ``random.Random``: a planted problem (a failing tool, exhausted
retries, a timeout being hit, approvals always granted, a bad kind of request, a cheaper
model, a failing, ordering-only or throttled pipeline step) or its clean counterpart. The
bench (``bench.recommendations``) and the tests (``tests/recommend``) share them.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

TOPICS: dict[str, list[str]] = {
    "refund": ["refund", "money", "back", "return", "charged", "twice"],
    "password": ["password", "reset", "login", "locked", "account", "email"],
    "shipping": ["shipping", "delivery", "package", "tracking", "late", "courier"],
    "invoice": ["invoice", "billing", "vat", "receipt", "company", "address"],
}
FILLER = ["please", "could", "you", "help", "me", "with", "my", "order", "today", "thanks", "again", "quickly", "need"]


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class Step:
    """One step of a synthetic agent run."""

    kind: str
    name: str
    status: str = "completed"
    attempts: int = 1
    seconds: float = 0.2
    error: dict[str, Any] | None = None
    output: Any = None


@dataclass
class RunSpec:
    """One synthetic agent run: its outcome, text, cost, steps and feedback scores."""

    status: str = "completed"
    input: str = "hello"
    output: str | None = "done"
    cost: float = 0.0
    steps: list[Step] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    comment: str | None = None


@dataclass
class PipelineStepSpec:
    """One step row of a synthetic pipeline run (``m[3]`` for a map item)."""

    step_id: str
    type: str
    status: str = "completed"
    attempts: int = 1
    start_s: float = 0.0
    seconds: float = 1.0


class HistoryWriter:
    """Buffers rows of one tenant's history and copies them into the database."""

    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id
        self.runs: list[tuple[Any, ...]] = []
        self.steps: list[tuple[Any, ...]] = []
        self.feedback: list[tuple[Any, ...]] = []
        self.pipeline_runs: list[tuple[Any, ...]] = []
        self.pipeline_steps: list[tuple[Any, ...]] = []

    def run(self, agent_id: str, version: int, spec: RunSpec, at: datetime) -> str:
        """Buffer one run with its steps and feedback; its id."""
        run_id = _id("run")
        error = json.dumps({"type": "Failed", "message": "the run failed"}) if spec.status == "failed" else None
        self.runs.append(
            (
                run_id,
                self.tenant_id,
                agent_id,
                version,
                _id("thr"),
                spec.status,
                spec.input,
                spec.output,
                error,
                "{}",
                100,
                40,
                spec.cost,
                f"{self.tenant_id}:run:{run_id}",
                at,
                at + timedelta(seconds=5),
            )
        )
        clock = at
        for seq, step in enumerate(spec.steps, start=1):
            ended = clock + timedelta(seconds=step.seconds)
            self.steps.append(
                (
                    self.tenant_id,
                    run_id,
                    f"s{seq}",
                    seq,
                    step.kind,
                    step.name,
                    step.status,
                    step.attempts,
                    None,
                    None if step.output is None else json.dumps(step.output),
                    None if step.error is None else json.dumps(step.error),
                    0,
                    0,
                    0.0,
                    clock,
                    ended,
                )
            )
            clock = ended
        for score in spec.scores:
            self.feedback.append(
                (
                    _id("fbk"),
                    self.tenant_id,
                    run_id,
                    agent_id,
                    version,
                    score,
                    None,
                    spec.comment,
                    "user",
                    "usr_bench",
                    at + timedelta(minutes=1),
                )
            )
        return run_id

    def pipeline_run(
        self, pipeline_id: str, version: int, steps: Sequence[PipelineStepSpec], at: datetime, status: str = "completed"
    ) -> str:
        """Buffer one pipeline run with its step rows; its id."""
        run_id = _id("prn")
        end = max((s.start_s + s.seconds for s in steps), default=0.0)
        self.pipeline_runs.append(
            (
                run_id,
                self.tenant_id,
                pipeline_id,
                version,
                status,
                "{}",
                0,
                0,
                0.0,
                f"{self.tenant_id}:pipeline:{run_id}",
                at,
                at + timedelta(seconds=end),
            )
        )
        for step in steps:
            began = at + timedelta(seconds=step.start_s)
            self.pipeline_steps.append(
                (
                    self.tenant_id,
                    run_id,
                    step.step_id,
                    step.type,
                    step.status,
                    step.attempts,
                    began,
                    began + timedelta(seconds=step.seconds),
                )
            )
        return run_id

    async def flush(self, engine: AsyncEngine) -> int:
        """Copy every buffered row into the database (one transaction); how many runs were written."""
        tables = (
            (
                "run",
                "id, tenant_id, agent_id, agent_version, thread_id, status, input, output, error, metadata,"
                " input_tokens, output_tokens, cost_usd, workflow_id, created_at, updated_at",
                self.runs,
            ),
            (
                "run_step",
                "tenant_id, run_id, step_id, seq, kind, name, status, attempts, input, output, error,"
                " input_tokens, output_tokens, cost_usd, started_at, ended_at",
                self.steps,
            ),
            (
                "run_feedback",
                "id, tenant_id, run_id, agent_id, agent_version, score, label, comment, created_by_kind,"
                " created_by_id, created_at",
                self.feedback,
            ),
            (
                "pipeline_run",
                "id, tenant_id, pipeline_id, version, status, input, input_tokens, output_tokens,"
                " cost_usd, workflow_id, created_at, updated_at",
                self.pipeline_runs,
            ),
            (
                "pipeline_run_step",
                "tenant_id, run_id, step_id, type, status, attempts, started_at, ended_at",
                self.pipeline_steps,
            ),
        )
        written = len(self.runs) + len(self.pipeline_runs)
        async with engine.begin() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            async with raw.cursor() as cursor:
                for table, columns, rows in tables:
                    if not rows:
                        continue
                    async with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            await copy.write_row(row)
        for _, _, rows in tables:
            rows.clear()
        return written


def spread(now: datetime, index: int, count: int, *, days: float = 20.0) -> datetime:
    """The creation time of run ``index`` of ``count`` spread evenly over the last ``days`` (oldest first)."""
    return now - timedelta(days=days) + timedelta(days=days) * (index + 1) / (count + 1)


def question(rng: random.Random, topic: str) -> str:
    """A request about ``topic``: three of its words among filler words."""
    words = [rng.choice(TOPICS[topic]) for _ in range(3)] + [rng.choice(FILLER) for _ in range(4)]
    rng.shuffle(words)
    return " ".join(words)


def _llm(model: str = "openai:gpt-4o-mini", seconds: float = 0.8) -> Step:
    return Step(kind="llm", name=model, seconds=seconds)


def _scores(rng: random.Random, good: bool, rated: float = 0.4) -> list[float]:
    if rng.random() >= rated:
        return []
    return [round(rng.uniform(0.7, 1.0) if good else rng.uniform(0.0, 0.3), 2)]


def _topic_run(rng: random.Random, tool: Step, *, bad_rate: float = 0.1, cost: float = 0.002) -> RunSpec:
    topic = rng.choice(list(TOPICS))
    bad = rng.random() < bad_rate
    return RunSpec(input=question(rng, topic), cost=cost, steps=[_llm(), tool, _llm()], scores=_scores(rng, not bad))


def clean_run(rng: random.Random, tool: str = "lookup") -> RunSpec:
    """A healthy run: its tool fails 1% of the time, retried 2% (always succeeding), fast; feedback mostly good."""
    roll = rng.random()
    if roll < 0.01:
        step = Step(kind="tool", name=tool, status="failed", error={"message": "error: not found"})
    elif roll < 0.03:
        step = Step(kind="tool", name=tool, attempts=2, seconds=1.2)
    else:
        step = Step(kind="tool", name=tool, seconds=rng.uniform(0.05, 0.4))
    return _topic_run(rng, step)


def failing_tool_run(rng: random.Random, tool: str = "lookup", rate: float = 0.4) -> RunSpec:
    """A run whose tool answers an error ``rate`` of the time."""
    if rng.random() < rate:
        message = rng.choice(["error: upstream returned 502", "error: invalid account id"])
        return _topic_run(rng, Step(kind="tool", name=tool, status="failed", error={"message": message}))
    return _topic_run(rng, Step(kind="tool", name=tool, seconds=rng.uniform(0.1, 0.5)))


def exhausted_run(rng: random.Random, tool: str = "flaky") -> RunSpec:
    """A run whose tool fails all 3 attempts 8% of the time and succeeds after a retry 25% of the time."""
    roll = rng.random()
    if roll < 0.08:
        error = {"type": "ConnectError", "message": "connection reset"}
        return RunSpec(
            status="failed",
            input=question(rng, rng.choice(list(TOPICS))),
            output=None,
            steps=[_llm(), Step(kind="tool", name=tool, status="failed", attempts=3, seconds=4, error=error)],
        )
    if roll < 0.33:
        return _topic_run(rng, Step(kind="tool", name=tool, attempts=rng.choice([2, 3]), seconds=2.5))
    return _topic_run(rng, Step(kind="tool", name=tool, seconds=0.3))


def useless_retry_run(rng: random.Random, tool: str = "legacy") -> RunSpec:
    """A run whose tool, when its first attempt fails (20%), fails every retry too."""
    if rng.random() < 0.2:
        error = {"type": "ServiceUnavailable", "message": "the legacy service is down"}
        return RunSpec(
            status="failed",
            input=question(rng, rng.choice(list(TOPICS))),
            output=None,
            steps=[_llm(), Step(kind="tool", name=tool, status="failed", attempts=3, seconds=3, error=error)],
        )
    return _topic_run(rng, Step(kind="tool", name=tool, seconds=0.2))


def timeout_run(rng: random.Random, tool: str = "report", limit: float = 30.0) -> RunSpec:
    """A slow tool: 12% of calls time out once (then succeed on the retry), the rest take 5 to 25 s."""
    if rng.random() < 0.12:
        return _topic_run(rng, Step(kind="tool", name=tool, attempts=2, seconds=limit + rng.uniform(1, 10)))
    return _topic_run(rng, Step(kind="tool", name=tool, seconds=rng.uniform(5, 25)))


def loose_timeout_run(rng: random.Random, tool: str = "ping") -> RunSpec:
    """A tool that always answers within 0.3 s (its configured timeout is far longer)."""
    return _topic_run(rng, Step(kind="tool", name=tool, seconds=rng.uniform(0.02, 0.3)))


def approved_run(rng: random.Random, tool: str = "send", reject: float = 0.0) -> RunSpec:
    """A run whose tool call waits for approval (granted unless the ``reject`` share), then runs."""
    rejected = rng.random() < reject
    approval = Step(
        kind="approval",
        name=tool,
        status="rejected" if rejected else "completed",
        seconds=rng.uniform(30, 300),
        output={"decision": "reject" if rejected else "approve", "decided_by": "usr_ops"},
    )
    if rejected:
        call = Step(kind="tool", name=tool, status="failed", error={"message": "error: the call was rejected: no"})
    else:
        call = Step(kind="tool", name=tool, seconds=0.3)
    return RunSpec(
        input=question(rng, "refund"), cost=0.002, steps=[_llm(), approval, call, _llm()], scores=_scores(rng, True)
    )


def model_run(rng: random.Random, *, cost: float, mean: float, model: str) -> RunSpec:
    """A run of a version whose model costs ``cost`` per run and is rated around ``mean`` (every run rated)."""
    score = min(1.0, max(0.0, rng.gauss(mean, 0.15)))
    step = Step(kind="tool", name="lookup", seconds=0.2)
    return RunSpec(
        input=question(rng, rng.choice(list(TOPICS))),
        cost=cost * rng.uniform(0.8, 1.2),
        steps=[_llm(model), step, _llm(model)],
        scores=[round(score, 3)],
    )


def cluster_run(rng: random.Random, *, bad_topic: str | None = "refund") -> RunSpec:
    """A rated run: requests about ``bad_topic`` go badly 70% of the time, the others 10%."""
    topic = rng.choice(list(TOPICS))
    bad = rng.random() < (0.7 if topic == bad_topic else 0.1)
    status = "failed" if bad and rng.random() < 0.3 else "completed"
    scores = [] if status == "failed" else [round(rng.uniform(0.0, 0.3) if bad else rng.uniform(0.7, 1.0), 2)]
    comment = "it did not refund the order" if bad and topic == "refund" else None
    return RunSpec(
        status=status,
        input=question(rng, topic),
        output=None if status == "failed" else "answer",
        cost=0.002,
        steps=[_llm()],
        scores=scores,
        comment=comment,
    )


PipelineRunMaker = Callable[[random.Random], list[PipelineStepSpec]]


def failing_step_run(rng: random.Random, *, rate: float = 0.3) -> list[PipelineStepSpec]:
    """``fetch`` (a tool) fails ``rate`` of the time; ``summarize`` follows it."""
    failed = rng.random() < rate
    steps = [PipelineStepSpec("fetch", "tool", status="failed" if failed else "completed", seconds=1.0)]
    if not failed:
        steps.append(PipelineStepSpec("summarize", "agent", start_s=1.0, seconds=2.0))
    return steps


def ordered_run(rng: random.Random) -> list[PipelineStepSpec]:
    """``a`` (3-5 s) then ``b`` (2-4 s), which needs ``a`` without reading it."""
    first = rng.uniform(3, 5)
    return [
        PipelineStepSpec("a", "tool", seconds=first),
        PipelineStepSpec("b", "tool", start_s=first, seconds=rng.uniform(2, 4)),
    ]


def map_run(rng: random.Random, *, items: int = 40, limit: int = 5, item_s: float = 1.0) -> list[PipelineStepSpec]:
    """A map of ``items`` items run ``limit`` at a time, each ``item_s`` seconds."""
    rounds = -(-items // limit)
    steps = [PipelineStepSpec("each", "map", seconds=rounds * item_s + rng.uniform(0, 0.5))]
    steps += [
        PipelineStepSpec(f"each[{i}]", "tool", start_s=(i // limit) * item_s, seconds=item_s) for i in range(items)
    ]
    return steps


def write_runs(
    writer: HistoryWriter,
    agent_id: str,
    version: int,
    make: Callable[[random.Random], RunSpec],
    count: int,
    *,
    rng: random.Random,
    now: datetime,
    days: float = 20.0,
) -> list[str]:
    """``count`` runs of ``make`` for the agent version, spread over the ``days`` before ``now``; their ids."""
    return [writer.run(agent_id, version, make(rng), spread(now, i, count, days=days)) for i in range(count)]


def write_pipeline_runs(
    writer: HistoryWriter,
    pipeline_id: str,
    version: int,
    make: PipelineRunMaker,
    count: int,
    *,
    rng: random.Random,
    now: datetime,
) -> list[str]:
    """``count`` runs of the pipeline version (failed when a step failed), spread over the last 20 days."""
    ids = []
    for i in range(count):
        steps = make(rng)
        status = "failed" if any(s.status == "failed" for s in steps) else "completed"
        ids.append(writer.pipeline_run(pipeline_id, version, steps, spread(now, i, count), status))
    return ids
