"""Starting a pipeline run: record it (``queued``), then start its ``PipelineWorkflow``.

``start_pipeline_run`` is what ``POST /v1/pipelines/{id}/runs`` calls once it has the
version's definition and a validated input. It is idempotent twice over: an
``Idempotency-Key`` already used by the tenant answers the run it started (the same
request: pipeline, requested version and input, else :class:`IdempotencyKeyReusedError`;
the route looks the key up first, ``run_by_key``, so a retry after a ``PUT`` made another
version current still answers the run), and the workflow is
started with ``REJECT_DUPLICATE`` on the id ``{tenant}:pipeline:{run id}``, so starting a
queued run again (a retried request after Temporal was unreachable) is a no-op.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.contracts.pipelines import WORKFLOW_NAME, PipelineRunInput, PipelineRunStatus, StepRecord
from core.db.models import PipelineRun
from core.ids import PIPELINE_ID, RUN_KIND, TENANT_ID, new_id, pipeline_run_workflow_id
from core.pipelines.store import PipelineRunStore, StepWrite, rejecting_limit
from core.settings import Settings

RUN_KIND_PIPELINE = "pipeline"
"""``RunKind`` search attribute of pipeline-run workflows."""


@dataclass(frozen=True)
class Rerun:
    """What makes a start a re-run: the original run, the step it re-runs from, what it keeps."""

    rerun_of: str
    from_step: str
    reused: dict[str, StepRecord]
    """The records the new run starts with, by top-level step id."""
    rows: Sequence[StepWrite] = ()
    """The new run's first step rows: copies of the reused steps (map items too), the others ``pending``."""


class IdempotencyKeyReusedError(Exception):
    """An ``Idempotency-Key`` already started a run of another pipeline, version or input."""

    def __init__(self, key: str, run_id: str):
        super().__init__(
            f"Idempotency-Key {key!r} was used for another request (pipeline run {run_id}); "
            "send the same pipeline, version and input to get that run, or use a new key"
        )
        self.key = key
        self.run_id = run_id


def request_fingerprint(
    pipeline_id: str, version: int | None, run_input: Any, rerun: dict[str, str] | None = None
) -> str:
    """SHA-256 of what a start request asks for (``version`` as requested; key order does not count).

    ``rerun``: ``{rerun_of, from_step}`` of a re-run.
    """
    asked: dict[str, Any] = {"pipeline_id": pipeline_id, "version": version, "input": run_input}
    if rerun:
        asked["rerun"] = rerun
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def start_pipeline_run(
    engine: AsyncEngine,
    temporal: Client,
    settings: Settings,
    *,
    tenant_id: str,
    pipeline_id: str,
    version: int,
    definition: dict[str, Any],
    run_input: Any = None,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    rerun: Rerun | None = None,
) -> tuple[PipelineRun, bool]:
    """Record a run of ``pipeline_id`` ``version`` and start its workflow; ``(run, created)``.

    ``definition`` is the version's saved (validated) definition and ``run_input`` the
    input already checked against its ``inputs`` schema. A run found by its key that is
    still ``queued`` has its workflow started (again: a no-op when it runs). ``fingerprint``
    is the request's (default: of ``pipeline_id``, ``version``, ``run_input`` and ``rerun``).
    A ``rerun`` starts with the records it reuses (and their rows, copied from the original run).

    Raises:
        IdempotencyKeyReusedError: the key started a run of another request.
        ConcurrencyLimitError: the definition says ``on_concurrency_limit: reject`` and the
            pipeline already has ``max_concurrent_runs`` live runs.
    """
    fingerprint = fingerprint or request_fingerprint(
        pipeline_id, version, run_input, {"rerun_of": rerun.rerun_of, "from_step": rerun.from_step} if rerun else None
    )
    run_id = new_id("prn")
    run, created = await PipelineRunStore(engine).insert(
        PipelineRun(
            id=run_id,
            tenant_id=tenant_id,
            pipeline_id=pipeline_id,
            version=version,
            status=PipelineRunStatus.QUEUED,
            input=run_input,
            idempotency_key=idempotency_key,
            idempotency_hash=fingerprint if idempotency_key is not None else None,
            workflow_id=pipeline_run_workflow_id(tenant_id, run_id),
            rerun_of=rerun.rerun_of if rerun else None,
            reused_steps=sorted(rerun.reused) if rerun else None,
        ),
        rerun.rows if rerun else (),
        limit=rejecting_limit(definition),
    )
    if not created:
        same_request(run, idempotency_key or "", fingerprint)
    if run.status == PipelineRunStatus.QUEUED:
        await start_workflow(temporal, settings, run, definition, rerun.reused if rerun else None)
    return run, created


def same_request(run: PipelineRun, key: str, fingerprint: str) -> PipelineRun:
    """``run``, found by its ``Idempotency-Key``, if the request ``fingerprint`` is the one that started it."""
    if run.idempotency_hash != fingerprint:
        raise IdempotencyKeyReusedError(key, run.id)
    return run


async def run_by_key(engine: AsyncEngine, tenant_id: str, key: str, fingerprint: str) -> PipelineRun | None:
    """The run the tenant started with ``key`` (``None``: none), if the request ``fingerprint`` started it.

    Raises:
        IdempotencyKeyReusedError: the key started a run of another request.
    """
    run = await PipelineRunStore(engine).by_idempotency_key(tenant_id, key)
    return same_request(run, key, fingerprint) if run is not None else None


async def start_workflow(
    temporal: Client,
    settings: Settings,
    run: PipelineRun,
    definition: dict[str, Any],
    reused_steps: dict[str, StepRecord] | None = None,
) -> None:
    """Start ``run``'s workflow on the pipelines queue; a workflow already started is left alone."""
    try:
        await temporal.start_workflow(
            WORKFLOW_NAME,
            PipelineRunInput(
                tenant_id=run.tenant_id,
                run_id=run.id,
                pipeline_id=run.pipeline_id,
                version=run.version,
                definition=definition,
                input=run.input,
                reused_steps=reused_steps or {},
                rerun_of=run.rerun_of or "",
            ),
            id=run.workflow_id,
            task_queue=settings.pipelines_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(TENANT_ID, run.tenant_id),
                    SearchAttributePair(RUN_KIND, RUN_KIND_PIPELINE),
                    SearchAttributePair(PIPELINE_ID, run.pipeline_id),
                ]
            ),
            priority=Priority(fairness_key=run.tenant_id),
        )
    except WorkflowAlreadyStartedError:
        return
