"""Webhook deliveries of a run's events, each a durable child workflow that outlives the run."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts.agent_run import FinishRunResult
    from workflows.webhook_delivery import start_deliveries

from workflows.agent_run.patches import DELIVERY_START_IDEMPOTENT


async def deliver(tenant_id: str, result: FinishRunResult | None) -> None:
    """Start one durable delivery workflow per queued webhook delivery (they outlive this run).

    They run on the webhooks task queue the activity named, under the tenant's fairness key.
    A delivery that already exists (the same event again, e.g. a turn that fails again after
    a retry while the first delivery still retries) is not started twice: a no-op.
    """
    if result is None or not result.delivery_ids:
        return
    await start_deliveries(
        tenant_id, result.delivery_ids, result.webhooks_task_queue, patch_id=DELIVERY_START_IDEMPOTENT
    )
