"""``WebhookDeliveryWorkflow``: deliver one event to one webhook, retrying with backoff.

Started (one per webhook and event) with the id ``"{tenant_id}:webhook:{delivery_id}"``,
usually as an abandoned child of the agent run that produced the event, on the
``webhooks`` task queue (its own workers, off the runs' path) under the tenant's
fairness key, which its activities carry too. The
``webhooks.deliver`` activity is retried on 5xx, 408, 429 and network errors
(1 s, 2 s, 4 s … up to 60 s, 8 attempts by default) and not retried on other
4xx answers or refused URLs; when it gives up, the delivery is marked failed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import (
    Priority,
    RetryPolicy,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from core import policies
    from core.ids import RUN_KIND, TENANT_ID
    from core.webhooks.contracts import (
        WEBHOOK_DELIVERY_FAILED,
        WEBHOOK_EGRESS_DENIED,
        WEBHOOK_GONE,
        WEBHOOK_REJECTED,
        DeliverWebhookInput,
        DeliveryOutcome,
        MarkDeliveryFailedInput,
        WebhookDeliveryInput,
    )
    from core.webhooks.events import delivery_workflow_id
    from workflows._helpers import start_child_once

DELIVER_TIMEOUT = timedelta(seconds=30)


def _cause(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause)


@workflow.defn
class WebhookDeliveryWorkflow:
    """Delivery of one event to one webhook."""

    @workflow.run
    async def run(self, inp: WebhookDeliveryInput) -> DeliveryOutcome:
        """Deliver, or mark the delivery failed and fail with ``WebhookDeliveryFailed``."""
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=inp.retry_initial_interval_s),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=inp.retry_maximum_interval_s),
            maximum_attempts=inp.max_attempts,
            non_retryable_error_types=[WEBHOOK_REJECTED, WEBHOOK_EGRESS_DENIED, WEBHOOK_GONE],
        )
        fair = Priority(fairness_key=inp.tenant_id)
        try:
            outcome: DeliveryOutcome = await workflow.execute_activity_method(
                WebhookActivities.deliver,
                DeliverWebhookInput(inp.tenant_id, inp.webhook_id, inp.delivery_id),
                start_to_close_timeout=DELIVER_TIMEOUT,
                retry_policy=retry,
                priority=fair,
                summary=f"deliver {inp.delivery_id}",
            )
        except ActivityError as exc:
            message = _cause(exc)
            await workflow.execute_activity_method(
                WebhookActivities.mark_failed,
                MarkDeliveryFailedInput(inp.tenant_id, inp.delivery_id, message),
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
                priority=fair,
                summary=f"mark {inp.delivery_id} failed",
            )
            raise ApplicationError(
                f"webhook delivery failed: {message}", type=WEBHOOK_DELIVERY_FAILED, non_retryable=True
            ) from exc
        return outcome


async def start_deliveries(tenant_id: str, delivery_ids: list[str], task_queue: str, *, patch_id: str = "") -> None:
    """From a workflow: start one durable delivery workflow per queued delivery (they outlive it).

    They run on ``task_queue`` (``""``: the caller's), under the tenant's fairness key. A
    delivery that already exists (the same event again) is not started twice: a no-op.
    """
    for delivery_id in delivery_ids:
        started = await start_child_once(
            WebhookDeliveryWorkflow.run,
            WebhookDeliveryInput(tenant_id=tenant_id, webhook_id="", delivery_id=delivery_id),
            id=delivery_workflow_id(tenant_id, delivery_id),
            task_queue=task_queue or workflow.info().task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(TENANT_ID, tenant_id), SearchAttributePair(RUN_KIND, "webhook")]
            ),
            priority=Priority(fairness_key=tenant_id),
            patch_id=patch_id,
        )
        if not started:
            workflow.logger.info("webhook delivery already started", extra={"delivery_id": delivery_id})


def webhook_workflows_and_activities(
    activities: WebhookActivities,
) -> tuple[list[type[Any]], list[Callable[..., Any]]]:
    """Workflows and activities a worker registers for webhook delivery."""
    return [WebhookDeliveryWorkflow], [activities.enqueue, activities.deliver, activities.mark_failed]
