"""Voice sessions on the voice queue: ``VoiceSessionWorkflow``, ``VoiceRetentionWorkflow`` and their activities,
with the speech engines the settings choose (built once per worker process)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from activities.voice import VoiceActivities
from core.quotas import check_tenant_run_quotas
from core.threads import ThreadStore
from core.voice.audio_store import PgAudioStore
from core.voice.retention import ensure_retention_schedule
from core.voice.speech import SpeechEngines, engines_for
from core.voice.store import VoiceStore
from workers.deps import WorkerDeps
from workers.registry import Slice
from workflows.voice import VoiceRetentionWorkflow, VoiceSessionWorkflow


def speech_engines(deps: WorkerDeps) -> SpeechEngines:
    """The worker's speech engines (one set per worker: models load once)."""
    return deps.shared("voice.speech_engines", partial(engines_for, deps.settings))


def build_voice_activities(deps: WorkerDeps) -> VoiceActivities:
    """The voice activities over the worker's database, recordings, run quotas and speech engines."""
    return VoiceActivities(
        store=VoiceStore(deps.engine),
        audio=PgAudioStore(deps.engine),
        engines=speech_engines(deps),
        threads=ThreadStore(deps.engine, deps.redis),
        quota_check=partial(check_tenant_run_quotas, deps.engine, deps.settings),
        retention_s=deps.settings.voice_audio_retention_s,
    )


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    return build_voice_activities(deps).all()


async def warm_engines(deps: WorkerDeps) -> None:
    """Load the speech engines before the worker polls (``voice_warm_engines``): the first turn waits for no
    model, and a missing engine stops the worker at once with the error naming what to install."""
    if deps.settings.voice_warm_engines:
        await speech_engines(deps).warm()


async def retention_schedule(deps: WorkerDeps) -> None:
    """Create or update the Temporal Schedule of ``VoiceRetentionWorkflow``."""
    await ensure_retention_schedule(deps.client, deps.settings)


SLICE = Slice(
    workflows=[VoiceSessionWorkflow, VoiceRetentionWorkflow],
    activities=_activities,
    on_start=[warm_engines, retention_schedule],
)
