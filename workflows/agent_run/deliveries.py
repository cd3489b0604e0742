"""Webhook deliveries of a run's events, each a durable child workflow that outlives the run."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from core.contracts.agent_run import FinishRunResult
    from core.ids import RUN_KIND, TENANT_ID
    from core.webhooks import WebhookDeliveryInput, delivery_workflow_id
    from workflows._helpers import start_child_once
    from workflows.webhook_delivery import WebhookDeliveryWorkflow

from workflows.agent_run.patches import DELIVERY_START_IDEMPOTENT


async def deliver(tenant_id: str, result: FinishRunResult | None) -> None:
    """Start one durable delivery workflow per queued webhook delivery (they outlive this run).

    They run on the webhooks task queue the activity named, under the tenant's fairness key.
    A delivery that already exists (the same event again, e.g. a turn that fails again after
    a retry while the first delivery still retries) is not started twice: a no-op.
    """
    if result is None or not result.delivery_ids:
        return
    queue = result.webhooks_task_queue or workflow.info().task_queue
    for delivery_id in result.delivery_ids:
        started = await start_child_once(
            WebhookDeliveryWorkflow.run,
            WebhookDeliveryInput(tenant_id=tenant_id, webhook_id="", delivery_id=delivery_id),
            id=delivery_workflow_id(tenant_id, delivery_id),
            task_queue=queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(TENANT_ID, tenant_id), SearchAttributePair(RUN_KIND, "webhook")]
            ),
            priority=Priority(fairness_key=tenant_id),
            patch_id=DELIVERY_START_IDEMPOTENT,
        )
        if not started:
            workflow.logger.info("webhook delivery already started", extra={"delivery_id": delivery_id})
