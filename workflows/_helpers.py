"""Small deterministic helpers shared by the workflows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow


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
