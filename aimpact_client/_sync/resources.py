# Generated from aimpact_client/_async/resources.py by `python -m aimpact_client._unasync`: edit that file.
"""The API's resources for the synchronous client, one class per group of routes."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any, Literal

from aimpact_client._common import FINAL_STATUSES, MAX_WAIT_S, body, params, poll_intervals, seg
from aimpact_client._sync.transport import Transport
from aimpact_client.sse import RUN_CLOSED, TURN_END_EVENTS, Event
from aimpact_client.types import (
    Agent,
    AgentVersion,
    ApiKey,
    ApiKeyCreated,
    Delivery,
    Erasure,
    Feedback,
    Memory,
    MemorySearch,
    Pipeline,
    PipelineRun,
    PipelineRunStatus,
    PipelineSchedule,
    PipelineValidation,
    PipelineVersion,
    Recommendation,
    RecommendationKind,
    RecommendationRefresh,
    RecommendationStatus,
    Role,
    Run,
    RunStatus,
    RunTurn,
    Secret,
    Tenant,
    ThreadMessage,
    Tool,
    User,
    Webhook,
    WebhookCreated,
)

ToolSpec = str | Mapping[str, Any]


class _Resource:
    def __init__(self, transport: Transport) -> None:
        self._t = transport


class Runs(_Resource):
    """Agent runs: start, read, list, steer and follow."""

    def start(
        self,
        agent_id: str,
        input: str,
        *,
        thread_id: str | None = None,
        subject: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Start a run of the agent's current version (``idempotency_key``: the same key, the same run)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        payload = body(input=input, thread_id=thread_id, subject=subject, metadata=metadata)
        return self._t.call(Run, "POST", f"/v1/agents/{seg(agent_id)}/runs", json=payload, headers=headers)

    def get(self, run_id: str, *, wait_s: float = 0) -> Run:
        """A run with its steps; ``wait_s`` (at most 60) long-polls for the end of the turn in flight."""
        return self._t.call(Run, "GET", f"/v1/runs/{seg(run_id)}", params=params(wait_s=wait_s or None))

    def list(
        self, *, agent_id: str | None = None, status: RunStatus | None = None, page_size: int = 50
    ) -> Iterator[Run]:
        """Every run of the tenant (of ``agent_id``, in ``status``), newest first, fetched a page at a time."""
        yield from self._t.pages(Run, "/v1/runs", params(agent_id=agent_id, status=status), page_size)

    def wait(self, run_id: str, *, timeout_s: float = 300) -> Run:
        """The run once its turn has ended (completed, failed or cancelled); ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            run = self.get(run_id, wait_s=max(0.0, min(remaining, MAX_WAIT_S)))
            if run["status"] in FINAL_STATUSES:
                return run
            if remaining <= 0:
                raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout_s} s")
            time.sleep(0.2)  # the long-poll may end early (a turn ended, the status not yet written)

    def cancel(self, run_id: str) -> Run:
        """Cancel a run: its current step is cancelled and its status becomes ``cancelled``."""
        return self._t.call(Run, "POST", f"/v1/runs/{seg(run_id)}/cancel")

    def decide(
        self, run_id: str, step_id: str, decision: Literal["approve", "reject"], *, comment: str | None = None
    ) -> Run:
        """Approve or reject a tool call that waits for a human."""
        path = f"/v1/runs/{seg(run_id)}/approvals/{seg(step_id)}"
        return self._t.call(Run, "POST", path, json=body(decision=decision, comment=comment))

    def approve(self, run_id: str, step_id: str, *, comment: str | None = None) -> Run:
        """Approve the tool call of ``step_id``."""
        return self.decide(run_id, step_id, "approve", comment=comment)

    def reject(self, run_id: str, step_id: str, *, comment: str | None = None) -> Run:
        """Reject the tool call of ``step_id``."""
        return self.decide(run_id, step_id, "reject", comment=comment)

    def retry(self, run_id: str) -> RunTurn:
        """Continue a failed run from the step that failed; ``turn.after_event_id`` follows it."""
        return self._t.call(RunTurn, "POST", f"/v1/runs/{seg(run_id)}/retry")

    def send_message(self, run_id: str, input: str) -> RunTurn:
        """The next message of the conversation; ``turn.after_event_id`` follows the turn that answers it."""
        return self._t.call(RunTurn, "POST", f"/v1/runs/{seg(run_id)}/messages", json={"input": input})

    def events(self, run_id: str, *, after: str | None = None) -> Generator[Event, None, None]:
        """The run's events (after the event id ``after``) as they happen, up to ``run.closed``."""
        with closing(self._t.events(f"/v1/runs/{seg(run_id)}/events", after=after)) as stream:
            yield from stream

    def follow(self, run_id: str, *, after: str | None = None, turn: int | None = None) -> Iterator[Event]:
        """The run's events up to the end of a turn: the first one after ``after`` that ends (or ``turn``).

        A run stays open for the next message after each turn; this stops at the turn's
        ``run.completed``, ``run.failed`` or ``run.cancelled`` (or at ``run.closed``).
        """
        with closing(self.events(run_id, after=after)) as events:  # the stream closes when the turn ends
            for event in events:
                yield event
                if event.event in TURN_END_EVENTS and (turn is None or (event.turn or 1) >= turn):
                    return
                if event.event == RUN_CLOSED:
                    return

    def feedback(self, run_id: str, score: float, *, label: str | None = None, comment: str | None = None) -> Feedback:
        """Give feedback on a run (``score`` from 0, bad, to 1, good)."""
        payload = body(score=score, label=label, comment=comment)
        return self._t.call(Feedback, "POST", f"/v1/runs/{seg(run_id)}/feedback", json=payload)

    def list_feedback(self, run_id: str, *, page_size: int = 50) -> Iterator[Feedback]:
        """The feedback given on a run."""
        yield from self._t.pages(Feedback, f"/v1/runs/{seg(run_id)}/feedback", {}, page_size)

    def messages(self, thread_id: str, *, page_size: int = 100) -> Iterator[ThreadMessage]:
        """The messages of a thread (a run's ``thread_id``) in order."""
        yield from self._t.pages(ThreadMessage, f"/v1/threads/{seg(thread_id)}/messages", {}, page_size)


class Agents(_Resource):
    """Versioned agents."""

    def create(
        self,
        name: str,
        *,
        instructions: str | None = None,
        model: Mapping[str, Any] | None = None,
        tools: Sequence[ToolSpec] | None = None,
        memory: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Agent:
        """Create an agent at version 1; unset fields get the API's defaults."""
        payload = body(name=name, instructions=instructions, model=model, tools=tools, memory=memory, **fields)
        return self._t.call(Agent, "POST", "/v1/agents", json=payload)

    def list(self, *, page_size: int = 50) -> Iterator[Agent]:
        """Every agent of the tenant, newest first."""
        yield from self._t.pages(Agent, "/v1/agents", {}, page_size)

    def get(self, agent_id: str) -> Agent:
        """An agent at its current version (archived agents too)."""
        return self._t.call(Agent, "GET", f"/v1/agents/{seg(agent_id)}")

    def edit(self, agent_id: str, *, promote: bool = True, **changes: Any) -> Agent:
        """A new version with ``changes`` (instructions, model, tools, …); current unless ``promote`` is false."""
        payload = dict(changes, promote=promote)
        return self._t.call(Agent, "PATCH", f"/v1/agents/{seg(agent_id)}", json=payload)

    def versions(self, agent_id: str, *, page_size: int = 50) -> Iterator[AgentVersion]:
        """The agent's versions, newest first, each with ``current`` and its feedback."""
        yield from self._t.pages(AgentVersion, f"/v1/agents/{seg(agent_id)}/versions", {}, page_size)

    def version(self, agent_id: str, version: int) -> AgentVersion:
        """One version of the agent."""
        return self._t.call(AgentVersion, "GET", f"/v1/agents/{seg(agent_id)}/versions/{version}")

    def promote(self, agent_id: str, version: int) -> AgentVersion:
        """Make ``version`` current (rollback: promote an older one)."""
        return self._t.call(AgentVersion, "POST", f"/v1/agents/{seg(agent_id)}/versions/{version}/promote")

    def delete(self, agent_id: str) -> None:
        """Archive the agent: it starts no new runs; it, its versions and its runs stay readable."""
        self._t.send("DELETE", f"/v1/agents/{seg(agent_id)}")


class Tenants(_Resource):
    """Tenants (creating and changing them takes a platform administrator)."""

    def create(self, name: str, *, owner_email: str, owner_password: str) -> Tenant:
        """Create a tenant and its owner."""
        payload = {"name": name, "owner_email": owner_email, "owner_password": owner_password}
        return self._t.call(Tenant, "POST", "/v1/tenants", json=payload)

    def list(self, *, page_size: int = 50) -> Iterator[Tenant]:
        """Every tenant (platform administrators)."""
        yield from self._t.pages(Tenant, "/v1/tenants", {}, page_size)

    def get(self, tenant_id: str) -> Tenant:
        """A tenant: platform administrators see any, members their own."""
        return self._t.call(Tenant, "GET", f"/v1/tenants/{seg(tenant_id)}")

    def update(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        quotas: Mapping[str, Any] | None = None,
        egress_allowlist: Sequence[str] | None = None,
    ) -> Tenant:
        """Change a tenant's name, quotas or egress allowlist."""
        payload = body(name=name, quotas=quotas, egress_allowlist=egress_allowlist)
        return self._t.call(Tenant, "PATCH", f"/v1/tenants/{seg(tenant_id)}", json=payload)

    def set_owner(self, tenant_id: str, *, email: str, password: str) -> User:
        """Give a tenant an owner: a new user, or its user with ``email`` made owner with a new password."""
        payload = {"email": email, "password": password}
        return self._t.call(User, "POST", f"/v1/tenants/{seg(tenant_id)}/owners", json=payload)


class Users(_Resource):
    """Users of the caller's tenant."""

    def create(self, email: str, *, password: str, role: Role) -> User:
        """Add a user with ``role``."""
        return self._t.call(User, "POST", "/v1/users", json={"email": email, "password": password, "role": role})

    def list(self, *, page_size: int = 50) -> Iterator[User]:
        """Every user of the tenant, by id."""
        yield from self._t.pages(User, "/v1/users", {}, page_size)

    def update(self, user_id: str, *, role: Role) -> User:
        """Change a user's role."""
        return self._t.call(User, "PATCH", f"/v1/users/{seg(user_id)}", json={"role": role})

    def delete(self, user_id: str) -> None:
        """Remove a user."""
        self._t.send("DELETE", f"/v1/users/{seg(user_id)}")


class ApiKeys(_Resource):
    """API keys of the caller's tenant."""

    def create(self, name: str, *, role: Role) -> ApiKeyCreated:
        """A new key with ``role``; its ``key`` is shown this once."""
        return self._t.call(ApiKeyCreated, "POST", "/v1/api-keys", json={"name": name, "role": role})

    def list(self, *, page_size: int = 50) -> Iterator[ApiKey]:
        """Every key of the tenant (prefixes, never the keys)."""
        yield from self._t.pages(ApiKey, "/v1/api-keys", {}, page_size)

    def delete(self, key_id: str) -> None:
        """Revoke a key."""
        self._t.send("DELETE", f"/v1/api-keys/{seg(key_id)}")


class Tools(_Resource):
    """Built-in tools and the tenant's HTTP tools."""

    def create(
        self,
        name: str,
        *,
        url: str,
        method: str = "GET",
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Tool:
        """Define an HTTP tool (header values may name secrets as ``{{secret:NAME}}``)."""
        payload = body(
            name=name, url=url, method=method, description=description, parameters=parameters, headers=headers, **fields
        )
        return self._t.call(Tool, "POST", "/v1/tools", json=payload)

    def list(self, *, page_size: int = 50) -> Iterator[Tool]:
        """The built-in tools and the tenant's, by name."""
        yield from self._t.pages(Tool, "/v1/tools", {}, page_size)

    def get(self, name: str) -> Tool:
        """One tool."""
        return self._t.call(Tool, "GET", f"/v1/tools/{seg(name)}")

    def delete(self, name: str) -> None:
        """Delete one of the tenant's tools."""
        self._t.send("DELETE", f"/v1/tools/{seg(name)}")


class Webhooks(_Resource):
    """Webhooks and their deliveries."""

    def create(self, url: str, *, events: Sequence[str]) -> WebhookCreated:
        """Subscribe ``url`` to ``events``; the signing ``secret`` is shown this once."""
        return self._t.call(WebhookCreated, "POST", "/v1/webhooks", json={"url": url, "events": list(events)})

    def list(self, *, page_size: int = 50) -> Iterator[Webhook]:
        """Every webhook of the tenant, newest first."""
        yield from self._t.pages(Webhook, "/v1/webhooks", {}, page_size)

    def get(self, webhook_id: str) -> Webhook:
        """One webhook."""
        return self._t.call(Webhook, "GET", f"/v1/webhooks/{seg(webhook_id)}")

    def delete(self, webhook_id: str) -> None:
        """Delete a webhook."""
        self._t.send("DELETE", f"/v1/webhooks/{seg(webhook_id)}")

    def deliveries(self, webhook_id: str, *, page_size: int = 50) -> Iterator[Delivery]:
        """The events sent (or being sent) to a webhook, newest first."""
        yield from self._t.pages(Delivery, f"/v1/webhooks/{seg(webhook_id)}/deliveries", {}, page_size)


class Memories(_Resource):
    """Long-term memory per subject (the end user an agent talks to)."""

    def create(
        self,
        subject: str,
        text: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        importance: float | None = None,
        idempotency_key: str | None = None,
    ) -> Memory:
        """Store a fact about ``subject`` (``status`` is pending until its embedding is stored)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        payload = body(subject=subject, text=text, metadata=metadata, importance=importance)
        return self._t.call(Memory, "POST", "/v1/memories", json=payload, headers=headers)

    def list(self, subject: str, *, page_size: int = 50) -> Iterator[Memory]:
        """Every memory of ``subject``, newest first."""
        yield from self._t.pages(Memory, "/v1/memories", {"subject": subject}, page_size)

    def search(self, q: str, *, subject: str | None = None, k: int = 5) -> MemorySearch:
        """The ``k`` memories closest in meaning to ``q`` (of ``subject`` when given)."""
        query = params(q=q, subject=subject, k=k)
        return self._t.call(MemorySearch, "GET", "/v1/memories/search", params=query)

    def get(self, memory_id: str) -> Memory:
        """One memory."""
        return self._t.call(Memory, "GET", f"/v1/memories/{seg(memory_id)}")

    def delete(self, memory_id: str) -> None:
        """Delete one memory."""
        self._t.send("DELETE", f"/v1/memories/{seg(memory_id)}")

    def erase(self, subject: str) -> Erasure:
        """Erase everything stored about ``subject`` (right to be forgotten)."""
        return self._t.call(Erasure, "DELETE", "/v1/memories", params={"subject": subject})


class Secrets(_Resource):
    """The tenant's secrets (values go in, never come out)."""

    def set(self, name: str, value: str) -> Secret:
        """Store or replace a secret."""
        return self._t.call(Secret, "POST", "/v1/secrets", json={"name": name, "value": value})

    def list(self, *, page_size: int = 50) -> Iterator[Secret]:
        """Every secret's name and dates, by name."""
        yield from self._t.pages(Secret, "/v1/secrets", {}, page_size)

    def delete(self, name: str) -> None:
        """Delete a secret."""
        self._t.send("DELETE", f"/v1/secrets/{seg(name)}")


class Pipelines(_Resource):
    """Pipelines: versioned definitions, their runs and their schedule."""

    def create(self, name: str, definition: Mapping[str, Any]) -> Pipeline:
        """Create a pipeline at version 1 (an invalid definition raises 422 with each problem's JSON pointer)."""
        return self._t.call(Pipeline, "POST", "/v1/pipelines", json={"name": name, "definition": definition})

    def list(self, *, page_size: int = 50) -> Iterator[Pipeline]:
        """Every live pipeline of the tenant, newest first."""
        yield from self._t.pages(Pipeline, "/v1/pipelines", {}, page_size)

    def get(self, pipeline_id: str) -> Pipeline:
        """A pipeline at its current version (archived ones too)."""
        return self._t.call(Pipeline, "GET", f"/v1/pipelines/{seg(pipeline_id)}")

    def update(self, pipeline_id: str, definition: Mapping[str, Any], *, name: str | None = None) -> Pipeline:
        """A new immutable version, made current; runs in flight keep theirs."""
        payload = body(definition=definition, name=name)
        return self._t.call(Pipeline, "PUT", f"/v1/pipelines/{seg(pipeline_id)}", json=payload)

    def versions(self, pipeline_id: str, *, page_size: int = 50) -> Iterator[PipelineVersion]:
        """The pipeline's versions, newest first."""
        path = f"/v1/pipelines/{seg(pipeline_id)}/versions"
        yield from self._t.pages(PipelineVersion, path, {}, page_size)

    def version(self, pipeline_id: str, version: int) -> PipelineVersion:
        """One version of the pipeline."""
        return self._t.call(PipelineVersion, "GET", f"/v1/pipelines/{seg(pipeline_id)}/versions/{version}")

    def delete(self, pipeline_id: str) -> None:
        """Archive the pipeline: it starts no new runs; it, its versions and its runs stay readable."""
        self._t.send("DELETE", f"/v1/pipelines/{seg(pipeline_id)}")

    def validate(self, definition: Mapping[str, Any]) -> PipelineValidation:
        """Check a definition without storing it: its problems, or its plan."""
        return self._t.call(PipelineValidation, "POST", "/v1/pipelines/validate", json={"definition": definition})

    def run(
        self,
        pipeline_id: str,
        input: Any = None,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> PipelineRun:
        """Start a run of the current version (or ``version``); ``idempotency_key``: the same key, the same run."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        payload = body(input=input, version=version)
        path = f"/v1/pipelines/{seg(pipeline_id)}/runs"
        return self._t.call(PipelineRun, "POST", path, json=payload, headers=headers)

    def schedule(self, pipeline_id: str) -> PipelineSchedule:
        """The pipeline's schedule, with its next and recent firings."""
        return self._t.call(PipelineSchedule, "GET", f"/v1/pipelines/{seg(pipeline_id)}/schedule")

    def set_schedule(
        self,
        pipeline_id: str,
        cron: str,
        *,
        input: Any = None,
        overlap: str | None = None,
        paused: bool | None = None,
        **fields: Any,
    ) -> PipelineSchedule:
        """Create or replace the pipeline's schedule (``cron``: five fields, UTC)."""
        payload = body(cron=cron, input=input, overlap=overlap, paused=paused, **fields)
        return self._t.call(PipelineSchedule, "PUT", f"/v1/pipelines/{seg(pipeline_id)}/schedule", json=payload)

    def delete_schedule(self, pipeline_id: str) -> None:
        """Delete the pipeline's schedule (its runs stay)."""
        self._t.send("DELETE", f"/v1/pipelines/{seg(pipeline_id)}/schedule")

    def backfill(self, pipeline_id: str, start: str, end: str) -> None:
        """Start the runs the schedule would have started between ``start`` and ``end`` (ISO 8601 times)."""
        path = f"/v1/pipelines/{seg(pipeline_id)}/schedule/backfill"
        self._t.send("POST", path, json={"from": start, "to": end})


class PipelineRuns(_Resource):
    """Pipeline runs: read, list, wait for, decide approvals, cancel and re-run from a step."""

    def get(self, run_id: str) -> PipelineRun:
        """A pipeline run with its steps."""
        return self._t.call(PipelineRun, "GET", f"/v1/pipeline-runs/{seg(run_id)}")

    def events(self, run_id: str, *, after: str | None = None) -> Generator[Event, None, None]:
        """The run's events (after the event id ``after``) as they happen, until the stream ends."""
        with closing(self._t.events(f"/v1/pipeline-runs/{seg(run_id)}/events", after=after)) as stream:
            yield from stream

    def list(
        self, *, pipeline_id: str | None = None, status: PipelineRunStatus | None = None, page_size: int = 50
    ) -> Iterator[PipelineRun]:
        """Every pipeline run of the tenant (of ``pipeline_id``, in ``status``), newest first."""
        query = params(pipeline_id=pipeline_id, status=status)
        yield from self._t.pages(PipelineRun, "/v1/pipeline-runs", query, page_size)

    def wait(self, run_id: str, *, timeout_s: float = 300, until: frozenset[str] = FINAL_STATUSES) -> PipelineRun:
        """The run once its status is in ``until`` (by default final); ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for interval in poll_intervals():
            run = self.get(run_id)
            if run["status"] in until:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(f"pipeline run {run_id} is still {run['status']} after {timeout_s} s")
            time.sleep(interval)
        raise AssertionError("poll_intervals never ends")

    def decide(
        self, run_id: str, step_id: str, decision: Literal["approve", "reject"], *, comment: str | None = None
    ) -> None:
        """Approve or reject the approval step ``step_id``."""
        path = f"/v1/pipeline-runs/{seg(run_id)}/approvals/{seg(step_id)}"
        self._t.send("POST", path, json=body(decision=decision, comment=comment))

    def approve(self, run_id: str, step_id: str, *, comment: str | None = None) -> None:
        """Approve the step ``step_id``."""
        self.decide(run_id, step_id, "approve", comment=comment)

    def reject(self, run_id: str, step_id: str, *, comment: str | None = None) -> None:
        """Reject the step ``step_id`` (it fails)."""
        self.decide(run_id, step_id, "reject", comment=comment)

    def cancel(self, run_id: str) -> None:
        """Cancel a run: its running steps are cancelled and it ends ``cancelled``."""
        self._t.send("POST", f"/v1/pipeline-runs/{seg(run_id)}/cancel")

    def rerun(self, run_id: str, from_step: str, *, version: int | None = None) -> PipelineRun:
        """A new run that reuses the outputs of every step that does not depend on ``from_step``."""
        payload = body(from_step=from_step, version=version)
        return self._t.call(PipelineRun, "POST", f"/v1/pipeline-runs/{seg(run_id)}/rerun", json=payload)


class Recommendations(_Resource):
    """Changes mined from the tenant's history, with their evidence: list, refresh, apply or dismiss."""

    def list(
        self,
        *,
        status: RecommendationStatus | None = None,
        kind: RecommendationKind | None = None,
        page_size: int = 50,
    ) -> Iterator[Recommendation]:
        """Every recommendation of the tenant (in ``status``, of ``kind``), newest first."""
        query = params(status=status, kind=kind)
        yield from self._t.pages(Recommendation, "/v1/recommendations", query, page_size)

    def get(self, recommendation_id: str) -> Recommendation:
        """One recommendation."""
        return self._t.call(Recommendation, "GET", f"/v1/recommendations/{seg(recommendation_id)}")

    def refresh(self) -> RecommendationRefresh:
        """Start a mining pass of the tenant's history now (while one runs, that one is answered, ``reused``)."""
        return self._t.call(RecommendationRefresh, "POST", "/v1/recommendations/refresh")

    def apply(self, recommendation_id: str) -> Recommendation:
        """Make the change (it turns ``applied``); 409 when not open or its target changed (it turns ``stale``)."""
        path = f"/v1/recommendations/{seg(recommendation_id)}/apply"
        return self._t.call(Recommendation, "POST", path)

    def dismiss(self, recommendation_id: str, *, reason: str | None = None) -> Recommendation:
        """Dismiss it (``reason`` is kept with it): not suggested again unless its evidence changes materially."""
        path = f"/v1/recommendations/{seg(recommendation_id)}/dismiss"
        return self._t.call(Recommendation, "POST", path, json=body(reason=reason))
