"""The ``VoiceSessionWorkflow`` class: its handlers (update, signals, query) and its life (idle timeout, end,
continue-as-new).

Turns arrive through the ``submit_utterance`` update, which runs the turn (``workflows.voice.turn``)
and answers with its result once recorded; turns run one at a time, in the order they arrived.
``interrupt`` cancels the stage in flight and the turn is recorded ``interrupted``; ``end`` lets
the turn in flight finish, refuses new ones and ends the session. The run loop ends the session
when no turn arrived for ``idle_timeout_s`` (each wait re-checks its condition when it times
out), and continues as new after ``max_turns_per_execution`` turns or when Temporal suggests it,
once every turn in flight has answered.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.voice import VoiceActivities
    from core import policies
    from core.contracts.voice import (
        SESSION_CLOSED,
        VOICE_SESSION_WORKFLOW,
        EndReason,
        EndSession,
        Interrupt,
        KeepHeardInput,
        Played,
        RecordSessionInput,
        RecordTurnInput,
        SessionStatus,
        TranscriptLine,
        TranscriptQuery,
        TranscriptView,
        TurnResult,
        TurnStatus,
        Utterance,
        VoiceCarry,
        VoiceSessionInput,
        VoiceSessionResult,
    )
    from workflows._helpers import error_of, wait_or_timeout

from workflows.voice.turn import TurnProgress, take_turn

RECENT_LINES = 20
"""Turns the ``transcript`` query keeps (and carries over continue-as-new); the rest are in ``voice_turn``."""
KEEP_HEARD_PATCH = "voice-keep-heard"
"""Interrupted turns rewrite their reply in the thread to what was heard (histories before it never did)."""
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
"""A turn's record is retried until the database takes it: the turn's answer waits for it."""


@workflow.defn(name=VOICE_SESSION_WORKFLOW)
class VoiceSessionWorkflow:
    """A durable voice conversation with one agent version; see the module docstring."""

    @workflow.init
    def __init__(self, inp: VoiceSessionInput) -> None:
        carry = inp.carry or VoiceCarry()
        self._inp = inp
        self._turns = carry.turns
        self._recent: list[TranscriptLine] = list(carry.recent)
        self._executed = 0
        self._touched = 0
        """Changes when a turn arrives or answers: the idle timer restarts."""
        self._busy = 0
        self._lock = asyncio.Lock()
        self._in_flight: asyncio.Future[TurnResult] | None = None
        self._progress: TurnProgress | None = None
        self._early_interrupt: Interrupt | None = None
        """An interrupt naming a turn not yet in flight (it arrived before its update ran)."""
        self._interrupt: Interrupt | None = None
        self._end: EndSession | None = None
        self._closing = False
        self._status = SessionStatus.ACTIVE

    # -- handlers ----------------------------------------------------------------------------

    @workflow.query
    def transcript(self, query: TranscriptQuery | None = None) -> TranscriptView:
        """The session's status and its last turns (default 20; all of them are in ``voice_turn``)."""
        last = max(0, min(query.last if query is not None else RECENT_LINES, RECENT_LINES))
        return TranscriptView(
            session_id=self._inp.session_id,
            status=self._status.value,
            turns=self._turns,
            lines=self._recent[-last:] if last else [],
            turn_in_flight=self._in_flight is not None,
        )

    @workflow.signal
    def interrupt(self, request: Interrupt) -> None:
        """Stop the turn in flight (barge-in); without one, or when ``request`` names another turn, nothing happens."""
        progress = self._progress
        if request.turn_id is not None and (progress is None or request.turn_id != progress.utterance.turn_id):
            self._early_interrupt = request  # its turn may still wait for the lock: it starts interrupted
            return
        if self._in_flight is None or self._in_flight.done() or self._interrupt is not None:
            return
        self._interrupt = request
        self._in_flight.cancel()

    @workflow.signal
    def played(self, report: Played) -> None:
        """A streamed turn's reply was spoken to the end: the turn is recorded with the caller's latencies."""
        progress = self._progress
        if progress is not None and progress.utterance.turn_id == report.turn_id and progress.played is None:
            progress.played = report

    @workflow.signal
    def end(self, request: EndSession) -> None:
        """End the session once the turn in flight (if any) has answered."""
        if self._end is None:
            self._end = request

    @workflow.update
    async def submit_utterance(self, utterance: Utterance) -> TurnResult:
        """Take a turn: what the user said (a stored recording) in, the turn as recorded out."""
        self._busy += 1
        self._touched += 1
        try:
            async with self._lock:
                self._turns += 1
                result = await self._turn(utterance, self._turns)
                self._executed += 1
                return result
        finally:
            self._busy -= 1
            self._touched += 1

    @submit_utterance.validator
    def _validate_utterance(self, utterance: Utterance) -> None:
        if self._closing or self._end is not None:
            raise ApplicationError("the voice session has ended", type=SESSION_CLOSED)
        if not utterance.turn_id or not utterance.audio_id:
            raise ApplicationError("an utterance needs a turn id and an audio id", type="InvalidUtterance")

    # -- a turn --------------------------------------------------------------------------------

    async def _turn(self, utterance: Utterance, seq: int) -> TurnResult:
        started = workflow.now()
        progress = TurnProgress(utterance=utterance, seq=seq)
        early = self._early_interrupt
        if early is not None and early.turn_id == utterance.turn_id:
            self._early_interrupt = None
            progress.transcript = utterance.transcript or ""
            return await self._record(utterance, progress, progress.interrupted(early), started)
        task = asyncio.ensure_future(take_turn(self._inp, progress))
        self._in_flight, self._progress = task, progress
        try:
            result = await task
        except asyncio.CancelledError:
            if self._interrupt is None:
                raise  # the session itself is cancelled
            result = progress.interrupted(self._interrupt)
        except (ActivityError, ChildWorkflowError) as exc:
            if self._interrupt is not None and is_cancelled_exception(exc):
                result = progress.interrupted(self._interrupt)
            else:
                result = progress.result(TurnStatus.FAILED, error_of(exc))
        finally:
            interrupt, self._in_flight, self._progress, self._interrupt = self._interrupt, None, None, None
        if result.status == TurnStatus.INTERRUPTED and interrupt is not None:
            await self._keep_heard(interrupt, result)
        return await self._record(utterance, progress, result, started)

    async def _record(
        self, utterance: Utterance, progress: TurnProgress, result: TurnResult, started: datetime
    ) -> TurnResult:
        """Write the turn's row and keep its line for the ``transcript`` query."""
        seq = progress.seq
        result.latency.total = (workflow.now() - started) / timedelta(milliseconds=1) + utterance.received_ms
        await workflow.execute_local_activity_method(
            VoiceActivities.record_turn,
            RecordTurnInput(
                tenant_id=self._inp.tenant_id,
                session_id=self._inp.session_id,
                result=result,
                user_audio_id=utterance.audio_id,
                user_audio_s=progress.user_audio_s,
                reply_audio_s=progress.reply.audio_s if progress.reply else 0.0,
            ),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"turn {seq}: {result.status}",
        )
        self._recent = [
            *self._recent[-(RECENT_LINES - 1) :],
            TranscriptLine(seq, result.turn_id, result.transcript, result.reply_text, result.status),
        ]
        return result

    async def _keep_heard(self, interrupt: Interrupt, result: TurnResult) -> None:
        """The thread keeps only the part of an interrupted reply the user heard (when the caller says what it was)."""
        if interrupt.heard_text is None or result.run_id is None or not workflow.patched(KEEP_HEARD_PATCH):
            return
        await workflow.execute_local_activity_method(
            VoiceActivities.keep_heard,
            KeepHeardInput(
                tenant_id=self._inp.tenant_id,
                thread_id=self._inp.thread_id,
                run_id=result.run_id,
                heard_text=interrupt.heard_text,
            ),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"turn {result.seq}: keep what was heard",
        )

    # -- the session -------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: VoiceSessionInput) -> VoiceSessionResult:
        """Take turns until the session ends (``end``, idle timeout, cancellation); continue as new when long."""
        try:
            reason = await self._live(inp)
        except asyncio.CancelledError:
            self._closing = True
            await self._close(SessionStatus.ENDED, EndReason.CANCELLED)
            raise
        self._closing = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._close(SessionStatus.ENDED, reason)
        return VoiceSessionResult(session_id=inp.session_id, turns=self._turns, reason=reason.value)

    async def _live(self, inp: VoiceSessionInput) -> EndReason:
        """Wait for turns; why the session ends."""
        idle = timedelta(seconds=inp.idle_timeout_s)
        while True:
            woke = await wait_or_timeout(functools.partial(self._stirred, self._touched), idle)
            if self._end is not None:
                return EndReason.ENDED
            if not woke and self._busy == 0:
                return EndReason.IDLE
            long = self._executed >= inp.max_turns_per_execution or workflow.info().is_continue_as_new_suggested()
            if long and self._busy == 0:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._end is None:
                    workflow.continue_as_new(self._carry(inp))

    def _stirred(self, touched: int) -> bool:
        """Whether the session was asked to end, or a turn arrived or answered since ``touched``."""
        return self._end is not None or self._touched != touched

    def _carry(self, inp: VoiceSessionInput) -> VoiceSessionInput:
        return VoiceSessionInput(
            tenant_id=inp.tenant_id,
            session_id=inp.session_id,
            agent_id=inp.agent_id,
            agent_version=inp.agent_version,
            thread_id=inp.thread_id,
            subject=inp.subject,
            idle_timeout_s=inp.idle_timeout_s,
            max_turns_per_execution=inp.max_turns_per_execution,
            playback_wait_s=inp.playback_wait_s,
            heartbeat_timeout_s=inp.heartbeat_timeout_s,
            agent_max_steps=inp.agent_max_steps,
            agents_task_queue=inp.agents_task_queue,
            experiment_id=inp.experiment_id,
            experiment_arm=inp.experiment_arm,
            carry=VoiceCarry(turns=self._turns, recent=list(self._recent)),
        )

    async def _close(self, status: SessionStatus, reason: EndReason) -> None:
        self._status = status
        await workflow.execute_activity_method(
            VoiceActivities.record_session,
            RecordSessionInput(
                tenant_id=self._inp.tenant_id,
                session_id=self._inp.session_id,
                status=status.value,
                reason=reason.value,
                turns=self._turns,
            ),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=f"session {reason.value} after {self._turns} turns",
        )
