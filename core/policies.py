"""Named timeouts and retry policies shared by workflows and activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from core.errors import NON_RETRYABLE_TYPES

DB_WRITE_TIMEOUT = timedelta(seconds=15)
LLM_TIMEOUT = timedelta(seconds=120)
TOOL_TIMEOUT = timedelta(seconds=30)

DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
"""Projection writes: retry until the database is back."""

CONSOLIDATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
"""One tenant's consolidation: a few attempts, then the tenant is reported failed and the pass goes on."""

LLM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
"""Model calls: transient provider failures are retried with backoff."""

TOOL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
"""Tool calls: a few retries; business failures are returned to the model."""


def llm_retry(max_attempts: int | None) -> RetryPolicy:
    """The model policy with an attempt cap from the agent's ``model.params.max_attempts``."""
    if not max_attempts:
        return LLM_RETRY
    return RetryPolicy(
        initial_interval=LLM_RETRY.initial_interval,
        backoff_coefficient=LLM_RETRY.backoff_coefficient,
        maximum_interval=LLM_RETRY.maximum_interval,
        maximum_attempts=max_attempts,
        non_retryable_error_types=LLM_RETRY.non_retryable_error_types,
    )


def tool_retry(max_attempts: int | None) -> RetryPolicy:
    """The tool policy with a per-tool attempt cap."""
    if max_attempts is None:
        return TOOL_RETRY
    return RetryPolicy(
        initial_interval=TOOL_RETRY.initial_interval,
        backoff_coefficient=TOOL_RETRY.backoff_coefficient,
        maximum_interval=TOOL_RETRY.maximum_interval,
        maximum_attempts=max_attempts,
        non_retryable_error_types=TOOL_RETRY.non_retryable_error_types,
    )


SPEECH_TIMEOUT = timedelta(minutes=5)
"""One engine call of a voice turn (speech to text or text to speech), waiting for the engine included."""

SPEECH_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=5,
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
"""Speech engine calls: a crashed worker's call is retried elsewhere at once; a few attempts, then the turn fails."""
