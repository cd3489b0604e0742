"""``VoiceRetentionWorkflow``: one pass deleting the recordings of voice turns past their retention.

Started by the ``voice-audio-retention`` Schedule (``core.voice.retention``) every
``voice_retention_interval_s``; one heartbeated activity deletes the recordings in batches.
A pass that fails its attempts ends; the next scheduled one starts over.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.voice import VoiceActivities
    from core.contracts.voice import VOICE_RETENTION_WORKFLOW, RetentionInput, RetentionResult

PURGE_TIMEOUT = timedelta(minutes=30)
PURGE_HEARTBEAT = timedelta(seconds=60)
PURGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=3
)


@workflow.defn(name=VOICE_RETENTION_WORKFLOW)
class VoiceRetentionWorkflow:
    """Deletes recordings past retention."""

    @workflow.run
    async def run(self, inp: RetentionInput) -> RetentionResult:
        """One pass; how many recordings it deleted."""
        result: RetentionResult = await workflow.execute_activity_method(
            VoiceActivities.purge_audio,
            inp,
            start_to_close_timeout=PURGE_TIMEOUT,
            heartbeat_timeout=PURGE_HEARTBEAT,
            retry_policy=PURGE_RETRY,
            summary=f"delete recordings older than {inp.retention_s:.0f} s",
        )
        return result
