"""Small deterministic helpers shared by the workflows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.exceptions import CancelledError as TemporalCancelledError

T = TypeVar("T")


async def wait_or_timeout(
    condition: Callable[[], bool],
    timeout: timedelta | None,  # noqa: ASYNC109 - a durable workflow timer, not an asyncio deadline
    *,
    patch_id: str = "",
) -> bool:
    """Wait for ``condition`` up to ``timeout``; whether it holds after the wait, timed out or not.

    A timer and a message (an update or signal) can land in the same workflow task: the
    timeout then wins the race although the message was already accepted. Checking the
    condition again after the timeout honours that message. ``patch_id`` guards this
    re-check for workflows whose histories were recorded before it (it is asked only when
    the re-check changes the outcome, so only those runs record its marker).
    """
    try:
        await workflow.wait_condition(condition, timeout=timeout)
    except TimeoutError:
        return condition() and (not patch_id or workflow.patched(patch_id))
    return True


def error_of(exc: BaseException) -> dict[str, str]:
    """The innermost application error's ``type`` and ``message`` (through activity and child errors)."""
    cause: BaseException | None = exc
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return {"type": cause.type or "ApplicationError", "message": cause.message}
    return {"type": type(cause).__name__, "message": str(cause)}


def activity_error_text(exc: ActivityError) -> str:
    """``"Type: message"`` of the failure that ended an activity's last attempt."""
    error = error_of(exc)
    return f"{error['type']}: {error['message']}"


async def start_child_once(*args: Any, patch_id: str = "", **kwargs: Any) -> bool:
    """Start a child workflow unless one of its id exists already; whether this call started it.

    Takes the arguments of ``workflow.start_child_workflow``. A child that already exists (the
    same id started earlier, e.g. the same event again) is a no-op, not an error. ``patch_id``
    guards the no-op for histories recorded when an existing child failed the caller.
    """
    try:
        await workflow.start_child_workflow(*args, **kwargs)
    except WorkflowAlreadyStartedError:
        if patch_id and not workflow.patched(patch_id):
            raise
        return False
    return True


FAIR_ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=5
)
LONG_ACTIVITY_TIMEOUT = timedelta(minutes=30)
SHORT_ACTIVITY_TIMEOUT = timedelta(seconds=60)


async def fair_activity(
    fn: Any, arg: Any, result_type: Any, *, tenant_id: str, heartbeat_timeout_s: float | None = None
) -> Any:
    """An activity on the tenant's fairness key, at most 5 attempts: with ``heartbeat_timeout_s`` a long
    one (``LONG_ACTIVITY_TIMEOUT``) that heartbeats, else a short one (``SHORT_ACTIVITY_TIMEOUT``)."""
    return await workflow.execute_activity(
        fn,
        arg,
        start_to_close_timeout=SHORT_ACTIVITY_TIMEOUT if heartbeat_timeout_s is None else LONG_ACTIVITY_TIMEOUT,
        heartbeat_timeout=None if heartbeat_timeout_s is None else timedelta(seconds=heartbeat_timeout_s),
        retry_policy=FAIR_ACTIVITY_RETRY,
        priority=Priority(fairness_key=tenant_id),
        result_type=result_type,
    )


class TenantWork(Protocol):
    """The input of a workflow whose activities run on its tenant's fairness key."""

    tenant_id: str
    heartbeat_timeout_s: float


async def tenant_activity(inp: TenantWork, fn: Any, arg: Any, result_type: Any, *, heartbeat: bool = False) -> Any:
    """``fair_activity`` on ``inp``'s tenant; with ``heartbeat``, a long one heartbeating within its timeout."""
    heartbeat_s = inp.heartbeat_timeout_s if heartbeat else None
    return await fair_activity(fn, arg, result_type, tenant_id=inp.tenant_id, heartbeat_timeout_s=heartbeat_s)


async def recorded_outcome(
    work: Awaitable[T],
    *,
    cancelled: Callable[[], Awaitable[None]],
    failed: Callable[[dict[str, str]], Awaitable[None]],
    failure_type: str,
) -> T:
    """The result of ``work``, whose cancellation or failure is recorded before it ends the workflow.

    A cancellation (of the workflow, or of the activity it waited on) is recorded by ``cancelled``
    and raised as one. An activity that failed after its retries is recorded by ``failed`` with its
    error's ``type`` (``failure_type`` when it has none) and ``message``, then fails the workflow
    as a non-retryable ``ApplicationError`` of that type.
    """
    try:
        return await work
    except asyncio.CancelledError:
        await cancelled()
        raise
    except ActivityError as exc:
        if isinstance(exc.cause, TemporalCancelledError):
            await cancelled()
            raise asyncio.CancelledError from exc
        cause = exc.cause
        kind = cause.type if isinstance(cause, ApplicationError) and cause.type else failure_type
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        await failed({"type": kind, "message": message})
        raise ApplicationError(message, type=kind, non_retryable=True) from exc
