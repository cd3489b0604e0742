"""Identifiers: object ids, workflow ids and search-attribute keys.

Workflow ids are ``"{tenant_id}:{kind}:{key}"`` so that every workflow is
attributable to exactly one tenant; they never contain personal data.
"""

from __future__ import annotations

import secrets

from temporalio.common import SearchAttributeKey

TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
AGENT_ID = SearchAttributeKey.for_keyword("AgentId")
RUN_KIND = SearchAttributeKey.for_keyword("RunKind")
RUN_STATUS = SearchAttributeKey.for_keyword("RunStatus")
"""An agent run's status (``running``, ``waiting_approval``, ``failed``, ``completed``, ``cancelled``),
kept current by the run, so Temporal's lists show a failed run that still waits for a retry."""

PIPELINE_ID = SearchAttributeKey.for_keyword("PipelineId")
"""The pipeline a pipeline run (``RunKind`` ``pipeline``) interprets."""

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str], ...] = (TENANT_ID, AGENT_ID, RUN_KIND, RUN_STATUS, PIPELINE_ID)


def new_id(prefix: str) -> str:
    """A random opaque id such as ``run_5f1c...`` (URL-safe, 96 bits)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def workflow_id(tenant_id: str, kind: str, key: str) -> str:
    """The workflow id of ``kind``/``key`` owned by ``tenant_id``."""
    return f"{tenant_id}:{kind}:{key}"


def run_workflow_id(tenant_id: str, run_id: str) -> str:
    """Workflow id of an agent run."""
    return workflow_id(tenant_id, "run", run_id)


def pipeline_run_workflow_id(tenant_id: str, run_id: str) -> str:
    """Workflow id of a pipeline run."""
    return workflow_id(tenant_id, "pipeline", run_id)


def tenant_of_workflow(workflow_id_: str) -> str:
    """The tenant prefix of a workflow id."""
    return workflow_id_.split(":", 1)[0]


def voice_session_workflow_id(tenant_id: str, session_id: str) -> str:
    """Workflow id of a voice session."""
    return workflow_id(tenant_id, "voice", session_id)
