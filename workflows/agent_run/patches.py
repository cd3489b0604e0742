"""Patch ids of ``AgentRunWorkflow``: each guards a change of its command sequence.

Lifecycle of a patch: it stays (``workflow.patched``) while runs started before it may
still be open; once none can be, it becomes ``workflow.deprecate_patch`` for one release;
then it is removed, together with the recorded histories of runs started before it.
"""

LOCAL_BEGIN = "begin-as-local-activity"
"""Patch id: runs started before it scheduled ``begin`` as a regular activity."""
LOCAL_FINISH = "finish-as-local-activity"
"""Patch id: runs started before it scheduled ``finish`` as a regular activity."""
PARALLEL_TOOLS = "parallel-tool-calls"
"""Patch id: runs started before it ran the tool calls of one model answer one by one."""
CANCEL_IN_STEP = "cancel-in-step-cancels"
"""Patch id: runs started before it marked a run cancelled during a step as failed (and retryable)."""
DELIVERY_START_IDEMPOTENT = "delivery-start-idempotent"
"""Patch id: runs started before it failed when a delivery child of the same id already existed."""
TOOL_CALL_LIMIT = "bounded-tool-calls"
"""Patch id: runs started before it ran all tool calls of one answer at once (no concurrency limit)."""
MESSAGE_AT_IDLE_DEADLINE = "message-at-idle-deadline"
"""Patch id: runs started before it closed when a message landed in the task of the idle timeout."""
RETRY_AT_DEADLINE = "retry-at-window-end"
"""Patch id: runs started before it failed for good when a retry landed in the task of the window's end."""
DECISION_AT_DEADLINE = "decision-at-approval-deadline"
"""Patch id: runs started before it rejected a call when its decision landed in the task of the deadline."""
CANCEL_MODEL_STEP = "cancel-cancels-model-step"
"""Patch id: runs started before it left the model activity running when the run was cancelled during it."""
IDLE_CANCEL_KEEPS_ANSWER = "idle-cancel-keeps-answer"
"""Patch id: runs started before it became ``cancelled`` (output erased) when cancelled between turns."""
RUN_CLOSED_EVENT = "run-closed-event"
"""Patch id: runs started before it ended without publishing ``run.closed`` on their event stream."""
RUN_STATUS_ATTRIBUTE = "run-status-search-attribute"
"""Patch id: runs started before it did not keep the ``RunStatus`` search attribute current."""
