"""Voice sessions: ``VoiceSessionWorkflow`` (``session``; a turn's stages in ``turn``) and the scheduled
``VoiceRetentionWorkflow`` (``retention``) that deletes recordings past their retention."""

from workflows.voice.retention import VoiceRetentionWorkflow
from workflows.voice.session import VoiceSessionWorkflow

__all__ = ["VoiceRetentionWorkflow", "VoiceSessionWorkflow"]
