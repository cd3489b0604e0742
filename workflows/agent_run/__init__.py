"""``AgentRunWorkflow``: one durable, multi-turn agent conversation.

A turn: model step → tool steps (each possibly waiting for a human approval) →
model step … → answer. Every step is an activity with a named retry policy; the
conversation lives in PostgreSQL (``thread_message``) and the workflow passes
references. Between turns the run waits for ``send_message``; a failed turn
waits for ``retry`` and then continues from the step that failed. Long
conversations continue-as-new between turns.

``workflow`` holds the class (handlers and run loop), built from mixins over
``state``: ``turn``, ``model_step``, ``tool_calls``, ``approvals`` and
``lifecycle`` (with ``deliveries``); ``patches`` holds the patch ids.
"""

from workflows.agent_run.patches import (
    CANCEL_IN_STEP,
    CANCEL_MODEL_STEP,
    DECISION_AT_DEADLINE,
    DELIVERY_START_IDEMPOTENT,
    IDLE_CANCEL_KEEPS_ANSWER,
    LOCAL_BEGIN,
    LOCAL_FINISH,
    MESSAGE_AT_IDLE_DEADLINE,
    PARALLEL_TOOLS,
    RETRY_AT_DEADLINE,
    RUN_CLOSED_EVENT,
    RUN_STATUS_ATTRIBUTE,
    TOOL_CALL_LIMIT,
)
from workflows.agent_run.tool_calls import MAX_CONCURRENT_TOOL_CALLS
from workflows.agent_run.workflow import AgentRunWorkflow

__all__ = [
    "CANCEL_IN_STEP",
    "CANCEL_MODEL_STEP",
    "DECISION_AT_DEADLINE",
    "DELIVERY_START_IDEMPOTENT",
    "IDLE_CANCEL_KEEPS_ANSWER",
    "LOCAL_BEGIN",
    "LOCAL_FINISH",
    "MAX_CONCURRENT_TOOL_CALLS",
    "MESSAGE_AT_IDLE_DEADLINE",
    "PARALLEL_TOOLS",
    "RETRY_AT_DEADLINE",
    "RUN_CLOSED_EVENT",
    "RUN_STATUS_ATTRIBUTE",
    "TOOL_CALL_LIMIT",
    "AgentRunWorkflow",
]
