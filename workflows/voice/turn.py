"""One voice turn: transcribe (VAD → STT) → the agent's run on the session's thread → synthesize.

The agent turn is a child ``AgentRunWorkflow`` (by name, on the agents queue) of a ``run`` row
that ``voice.agent_run`` inserts for the session's pinned agent version, thread and subject.
A text run of the same thread is the same thing: the child appends the transcript to the
thread, recalls the subject's memories, builds the context (compaction included), runs the
model and tool steps with their approvals and retries, appends the answer, accounts usage and
queues memory extraction and webhooks. Reusing the workflow rather than calling the agent
activities from here keeps one implementation of an agent turn, lists each voice turn under
``/v1/runs`` (feedback, replays and experiments work on it), and puts the turn's durability
where it already is: the child's id derives from the session and ``seq``, so a replayed or
retried session never starts it twice, and the child's keyed thread writes append its answer
once. A later streaming layer subscribes to the child run's event stream (its model deltas) to
speak the reply sentence by sentence, and interrupts the turn with the ``interrupt`` signal,
which cancels whichever stage is in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.voice import VoiceActivities
    from core import policies
    from core.contracts.agent_run import AGENT_RUN_WORKFLOW, AgentRunInput, AgentRunResult
    from core.contracts.voice import (
        AgentTurnInput,
        AgentTurnRun,
        Interrupt,
        Played,
        StageLatency,
        Synthesized,
        SynthesizeInput,
        Transcribed,
        TranscribeInput,
        TurnResult,
        TurnStatus,
        Utterance,
        VoiceSessionInput,
    )
    from core.ids import AGENT_ID, RUN_KIND, TENANT_ID
    from workflows._helpers import wait_or_timeout


def _ms(since: datetime) -> float:
    return (workflow.now() - since) / timedelta(milliseconds=1)


@dataclass
class TurnProgress:
    """What a turn has done so far: what an interrupted turn records."""

    utterance: Utterance
    seq: int
    transcript: str = ""
    reply_text: str = ""
    run_id: str | None = None
    reply: Synthesized | None = None
    played: Played | None = None
    """The ``played`` signal of a streamed turn."""
    user_audio_s: float = 0.0
    latency: StageLatency = field(default_factory=StageLatency)

    def result(self, status: TurnStatus, error: dict[str, str] | None = None) -> TurnResult:
        """The turn's result as it stands."""
        return TurnResult(
            turn_id=self.utterance.turn_id,
            seq=self.seq,
            status=status.value,
            transcript=self.transcript,
            reply_text=self.reply_text,
            reply_audio_id=self.reply.audio_id if self.reply else None,
            run_id=self.run_id,
            latency=self.latency,
            error=error,
        )

    def interrupted(self, request: Interrupt) -> TurnResult:
        """The result of a turn stopped by ``request``: the reply the user heard, if the caller says, else so far."""
        if request.heard_text is not None:
            self.reply_text = request.heard_text
        if request.reply_audio_id:
            self.reply = Synthesized(audio_id=request.reply_audio_id, audio_s=request.reply_audio_s)
        return self.result(TurnStatus.INTERRUPTED)


async def take_turn(inp: VoiceSessionInput, progress: TurnProgress) -> TurnResult:
    """Run the turn's stages; a failed stage raises (``ActivityError`` / ``ChildWorkflowError``)."""
    fair = Priority(fairness_key=inp.tenant_id)
    utterance = progress.utterance
    if utterance.transcript is not None:  # transcribed by the caller (a stream)
        heard = Transcribed(
            text=utterance.transcript,
            speech=bool(utterance.transcript),
            audio_s=utterance.audio_s,
            stt_ms=utterance.stt_ms,
        )
    else:
        heard = await workflow.execute_activity_method(
            VoiceActivities.transcribe,
            TranscribeInput(
                tenant_id=inp.tenant_id, session_id=inp.session_id, seq=progress.seq, audio_id=utterance.audio_id
            ),
            start_to_close_timeout=policies.SPEECH_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
            retry_policy=policies.SPEECH_RETRY,
            cancellation_type=ActivityCancellationType.TRY_CANCEL,
            priority=fair,
            summary=f"turn {progress.seq}: transcribe",
        )
    progress.transcript, progress.user_audio_s = heard.text, heard.audio_s
    progress.latency.vad, progress.latency.stt = heard.vad_ms, heard.stt_ms
    if not heard.speech or not heard.text.strip():
        return progress.result(TurnStatus.SILENT)
    started = workflow.now()
    reply = await _agent(inp, progress, fair)
    progress.latency.agent = _ms(started)
    if isinstance(reply, dict):
        return progress.result(TurnStatus.FAILED, reply)
    progress.reply_text = reply
    if utterance.streamed:
        await _played(inp, progress)
        return progress.result(TurnStatus.COMPLETED)
    if reply.strip():
        progress.reply = await workflow.execute_activity_method(
            VoiceActivities.synthesize,
            SynthesizeInput(tenant_id=inp.tenant_id, session_id=inp.session_id, seq=progress.seq, text=reply),
            start_to_close_timeout=policies.SPEECH_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
            retry_policy=policies.SPEECH_RETRY,
            cancellation_type=ActivityCancellationType.TRY_CANCEL,
            priority=fair,
            summary=f"turn {progress.seq}: synthesize",
        )
        progress.latency.tts = progress.reply.tts_ms
    return progress.result(TurnStatus.COMPLETED)


async def _played(inp: VoiceSessionInput, progress: TurnProgress) -> None:
    """Wait until the caller has spoken the reply (the ``played`` signal), at most ``playback_wait_s``."""
    await wait_or_timeout(lambda: progress.played is not None, timedelta(seconds=inp.playback_wait_s))
    played = progress.played
    if played is None:  # the caller went away: the reply stands as written, unspoken
        return
    agent_ms = progress.latency.agent
    progress.latency = replace(played.latency, vad=progress.latency.vad, stt=progress.latency.stt, agent=agent_ms)
    if played.reply_audio_id:
        progress.reply = Synthesized(
            audio_id=played.reply_audio_id, audio_s=played.reply_audio_s, tts_ms=played.latency.tts
        )


async def _agent(inp: VoiceSessionInput, progress: TurnProgress, fair: Priority) -> str | dict[str, str]:
    """The agent's reply to the transcript, or the error that kept its run from starting."""
    run: AgentTurnRun = await workflow.execute_activity_method(
        VoiceActivities.agent_run,
        AgentTurnInput(
            tenant_id=inp.tenant_id,
            session_id=inp.session_id,
            seq=progress.seq,
            agent_id=inp.agent_id,
            agent_version=inp.agent_version,
            thread_id=inp.thread_id,
            text=progress.transcript,
            subject=inp.subject,
            experiment_id=inp.experiment_id,
            experiment_arm=inp.experiment_arm,
            run_id=progress.utterance.run_id,
        ),
        start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
        retry_policy=policies.DB_RETRY,
        priority=fair,
        summary=f"turn {progress.seq}: agent run",
    )
    if run.error is not None:
        return run.error
    progress.run_id = run.run_id
    result: AgentRunResult = await workflow.execute_child_workflow(
        AGENT_RUN_WORKFLOW,  # by name: importing the class would load its modules into this sandbox
        AgentRunInput(
            inp.tenant_id,
            run.run_id,
            inp.agent_id,
            inp.agent_version,
            max_steps=inp.agent_max_steps,
            heartbeat_timeout_s=inp.heartbeat_timeout_s,
            thread_id=inp.thread_id,
            idle_timeout_s=0.0,  # one turn: the run completes with its answer
            retry_window_s=0.0,  # a failed turn fails at once (the session goes on)
        ),
        id=run.workflow_id,
        task_queue=inp.agents_task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(TENANT_ID, inp.tenant_id),
                SearchAttributePair(AGENT_ID, inp.agent_id),
                SearchAttributePair(RUN_KIND, "agent_run"),
            ]
        ),
        priority=fair,
        parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,  # a session that closes mid-turn cancels the run
        result_type=AgentRunResult,
    )
    return result.output
