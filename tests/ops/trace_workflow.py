"""A one-activity workflow for the tracing test, in its own module: the workflow sandbox
re-imports the module that defines a workflow, so it imports nothing but temporalio."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="ops_trace.echo")
async def echo(text: str) -> str:
    """Upper-case ``text``."""
    return text.upper()


@workflow.defn(name="OpsTraceWorkflow")
class OpsTraceWorkflow:
    """Runs :func:`echo` once."""

    @workflow.run
    async def run(self, text: str) -> str:
        """The activity's result."""
        return await workflow.execute_activity(echo, text, start_to_close_timeout=timedelta(seconds=10))
