"""The API's resources for the asynchronous client, one class per group of routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Literal

from aimpact_client._async.transport import AsyncTransport
from aimpact_client._common import FINAL_STATUSES, MAX_WAIT_S, body, params, poll_intervals, seg
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
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport


class AsyncRuns(_Resource):
    """Agent runs: start, read, list, steer and follow."""

    async def start(
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
        return await self._t.call(Run, "POST", f"/v1/agents/{seg(agent_id)}/runs", json=payload, headers=headers)

    async def get(self, run_id: str, *, wait_s: float = 0) -> Run:
        """A run with its steps; ``wait_s`` (at most 60) long-polls for the end of the turn in flight."""
        return await self._t.call(Run, "GET", f"/v1/runs/{seg(run_id)}", params=params(wait_s=wait_s or None))

    async def list(
        self, *, agent_id: str | None = None, status: RunStatus | None = None, page_size: int = 50
    ) -> AsyncIterator[Run]:
        """Every run of the tenant (of ``agent_id``, in ``status``), newest first, fetched a page at a time."""
        async for run in self._t.pages(Run, "/v1/runs", params(agent_id=agent_id, status=status), page_size):
            yield run

    async def wait(self, run_id: str, *, timeout_s: float = 300) -> Run:
        """The run once its turn has ended (completed, failed or cancelled); ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            run = await self.get(run_id, wait_s=max(0.0, min(remaining, MAX_WAIT_S)))
            if run["status"] in FINAL_STATUSES:
                return run
            if remaining <= 0:
                raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout_s} s")
            await asyncio.sleep(0.2)  # the long-poll may end early (a turn ended, the status not yet written)

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run: its current step is cancelled and its status becomes ``cancelled``."""
        return await self._t.call(Run, "POST", f"/v1/runs/{seg(run_id)}/cancel")

    async def decide(
        self, run_id: str, step_id: str, decision: Literal["approve", "reject"], *, comment: str | None = None
    ) -> Run:
        """Approve or reject a tool call that waits for a human."""
        path = f"/v1/runs/{seg(run_id)}/approvals/{seg(step_id)}"
        return await self._t.call(Run, "POST", path, json=body(decision=decision, comment=comment))

    async def approve(self, run_id: str, step_id: str, *, comment: str | None = None) -> Run:
        """Approve the tool call of ``step_id``."""
        return await self.decide(run_id, step_id, "approve", comment=comment)

    async def reject(self, run_id: str, step_id: str, *, comment: str | None = None) -> Run:
        """Reject the tool call of ``step_id``."""
        return await self.decide(run_id, step_id, "reject", comment=comment)

    async def retry(self, run_id: str) -> RunTurn:
        """Continue a failed run from the step that failed; ``turn.after_event_id`` follows it."""
        return await self._t.call(RunTurn, "POST", f"/v1/runs/{seg(run_id)}/retry")

    async def send_message(self, run_id: str, input: str) -> RunTurn:
        """The next message of the conversation; ``turn.after_event_id`` follows the turn that answers it."""
        return await self._t.call(RunTurn, "POST", f"/v1/runs/{seg(run_id)}/messages", json={"input": input})

    async def events(self, run_id: str, *, after: str | None = None) -> AsyncGenerator[Event, None]:
        """The run's events (after the event id ``after``) as they happen, up to ``run.closed``."""
        async with aclosing(self._t.events(f"/v1/runs/{seg(run_id)}/events", after=after)) as stream:
            async for event in stream:
                yield event

    async def follow(self, run_id: str, *, after: str | None = None, turn: int | None = None) -> AsyncIterator[Event]:
        """The run's events up to the end of a turn: the first one after ``after`` that ends (or ``turn``).

        A run stays open for the next message after each turn; this stops at the turn's
        ``run.completed``, ``run.failed`` or ``run.cancelled`` (or at ``run.closed``).
        """
        async with aclosing(self.events(run_id, after=after)) as events:  # the stream closes when the turn ends
            async for event in events:
                yield event
                if event.event in TURN_END_EVENTS and (turn is None or (event.turn or 1) >= turn):
                    return
                if event.event == RUN_CLOSED:
                    return

    async def feedback(
        self, run_id: str, score: float, *, label: str | None = None, comment: str | None = None
    ) -> Feedback:
        """Give feedback on a run (``score`` from 0, bad, to 1, good)."""
        payload = body(score=score, label=label, comment=comment)
        return await self._t.call(Feedback, "POST", f"/v1/runs/{seg(run_id)}/feedback", json=payload)

    async def list_feedback(self, run_id: str, *, page_size: int = 50) -> AsyncIterator[Feedback]:
        """The feedback given on a run."""
        async for item in self._t.pages(Feedback, f"/v1/runs/{seg(run_id)}/feedback", {}, page_size):
            yield item

    async def messages(self, thread_id: str, *, page_size: int = 100) -> AsyncIterator[ThreadMessage]:
        """The messages of a thread (a run's ``thread_id``) in order."""
        async for item in self._t.pages(ThreadMessage, f"/v1/threads/{seg(thread_id)}/messages", {}, page_size):
            yield item


class AsyncAgents(_Resource):
    """Versioned agents."""

    async def create(
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
        return await self._t.call(Agent, "POST", "/v1/agents", json=payload)

    async def list(self, *, page_size: int = 50) -> AsyncIterator[Agent]:
        """Every agent of the tenant, newest first."""
        async for agent in self._t.pages(Agent, "/v1/agents", {}, page_size):
            yield agent

    async def get(self, agent_id: str) -> Agent:
        """An agent at its current version (archived agents too)."""
        return await self._t.call(Agent, "GET", f"/v1/agents/{seg(agent_id)}")

    async def edit(self, agent_id: str, *, promote: bool = True, **changes: Any) -> Agent:
        """A new version with ``changes`` (instructions, model, tools, …); current unless ``promote`` is false."""
        payload = dict(changes, promote=promote)
        return await self._t.call(Agent, "PATCH", f"/v1/agents/{seg(agent_id)}", json=payload)

    async def versions(self, agent_id: str, *, page_size: int = 50) -> AsyncIterator[AgentVersion]:
        """The agent's versions, newest first, each with ``current`` and its feedback."""
        async for version in self._t.pages(AgentVersion, f"/v1/agents/{seg(agent_id)}/versions", {}, page_size):
            yield version

    async def version(self, agent_id: str, version: int) -> AgentVersion:
        """One version of the agent."""
        return await self._t.call(AgentVersion, "GET", f"/v1/agents/{seg(agent_id)}/versions/{version}")

    async def promote(self, agent_id: str, version: int) -> AgentVersion:
        """Make ``version`` current (rollback: promote an older one)."""
        return await self._t.call(AgentVersion, "POST", f"/v1/agents/{seg(agent_id)}/versions/{version}/promote")

    async def delete(self, agent_id: str) -> None:
        """Archive the agent: it starts no new runs; it, its versions and its runs stay readable."""
        await self._t.send("DELETE", f"/v1/agents/{seg(agent_id)}")


class AsyncTenants(_Resource):
    """Tenants (creating and changing them takes a platform administrator)."""

    async def create(self, name: str, *, owner_email: str, owner_password: str) -> Tenant:
        """Create a tenant and its owner."""
        payload = {"name": name, "owner_email": owner_email, "owner_password": owner_password}
        return await self._t.call(Tenant, "POST", "/v1/tenants", json=payload)

    async def list(self, *, page_size: int = 50) -> AsyncIterator[Tenant]:
        """Every tenant (platform administrators)."""
        async for tenant in self._t.pages(Tenant, "/v1/tenants", {}, page_size):
            yield tenant

    async def get(self, tenant_id: str) -> Tenant:
        """A tenant: platform administrators see any, members their own."""
        return await self._t.call(Tenant, "GET", f"/v1/tenants/{seg(tenant_id)}")

    async def update(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        quotas: Mapping[str, Any] | None = None,
        egress_allowlist: Sequence[str] | None = None,
    ) -> Tenant:
        """Change a tenant's name, quotas or egress allowlist."""
        payload = body(name=name, quotas=quotas, egress_allowlist=egress_allowlist)
        return await self._t.call(Tenant, "PATCH", f"/v1/tenants/{seg(tenant_id)}", json=payload)

    async def set_owner(self, tenant_id: str, *, email: str, password: str) -> User:
        """Give a tenant an owner: a new user, or its user with ``email`` made owner with a new password."""
        payload = {"email": email, "password": password}
        return await self._t.call(User, "POST", f"/v1/tenants/{seg(tenant_id)}/owners", json=payload)


class AsyncUsers(_Resource):
    """Users of the caller's tenant."""

    async def create(self, email: str, *, password: str, role: Role) -> User:
        """Add a user with ``role``."""
        return await self._t.call(User, "POST", "/v1/users", json={"email": email, "password": password, "role": role})

    async def list(self, *, page_size: int = 50) -> AsyncIterator[User]:
        """Every user of the tenant, by id."""
        async for user in self._t.pages(User, "/v1/users", {}, page_size):
            yield user

    async def update(self, user_id: str, *, role: Role) -> User:
        """Change a user's role."""
        return await self._t.call(User, "PATCH", f"/v1/users/{seg(user_id)}", json={"role": role})

    async def delete(self, user_id: str) -> None:
        """Remove a user."""
        await self._t.send("DELETE", f"/v1/users/{seg(user_id)}")


class AsyncApiKeys(_Resource):
    """API keys of the caller's tenant."""

    async def create(self, name: str, *, role: Role) -> ApiKeyCreated:
        """A new key with ``role``; its ``key`` is shown this once."""
        return await self._t.call(ApiKeyCreated, "POST", "/v1/api-keys", json={"name": name, "role": role})

    async def list(self, *, page_size: int = 50) -> AsyncIterator[ApiKey]:
        """Every key of the tenant (prefixes, never the keys)."""
        async for key in self._t.pages(ApiKey, "/v1/api-keys", {}, page_size):
            yield key

    async def delete(self, key_id: str) -> None:
        """Revoke a key."""
        await self._t.send("DELETE", f"/v1/api-keys/{seg(key_id)}")


class AsyncTools(_Resource):
    """Built-in tools and the tenant's HTTP tools."""

    async def create(
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
        return await self._t.call(Tool, "POST", "/v1/tools", json=payload)

    async def list(self, *, page_size: int = 50) -> AsyncIterator[Tool]:
        """The built-in tools and the tenant's, by name."""
        async for tool in self._t.pages(Tool, "/v1/tools", {}, page_size):
            yield tool

    async def get(self, name: str) -> Tool:
        """One tool."""
        return await self._t.call(Tool, "GET", f"/v1/tools/{seg(name)}")

    async def delete(self, name: str) -> None:
        """Delete one of the tenant's tools."""
        await self._t.send("DELETE", f"/v1/tools/{seg(name)}")


class AsyncWebhooks(_Resource):
    """Webhooks and their deliveries."""

    async def create(self, url: str, *, events: Sequence[str]) -> WebhookCreated:
        """Subscribe ``url`` to ``events``; the signing ``secret`` is shown this once."""
        return await self._t.call(WebhookCreated, "POST", "/v1/webhooks", json={"url": url, "events": list(events)})

    async def list(self, *, page_size: int = 50) -> AsyncIterator[Webhook]:
        """Every webhook of the tenant, newest first."""
        async for webhook in self._t.pages(Webhook, "/v1/webhooks", {}, page_size):
            yield webhook

    async def get(self, webhook_id: str) -> Webhook:
        """One webhook."""
        return await self._t.call(Webhook, "GET", f"/v1/webhooks/{seg(webhook_id)}")

    async def delete(self, webhook_id: str) -> None:
        """Delete a webhook."""
        await self._t.send("DELETE", f"/v1/webhooks/{seg(webhook_id)}")

    async def deliveries(self, webhook_id: str, *, page_size: int = 50) -> AsyncIterator[Delivery]:
        """The events sent (or being sent) to a webhook, newest first."""
        async for delivery in self._t.pages(Delivery, f"/v1/webhooks/{seg(webhook_id)}/deliveries", {}, page_size):
            yield delivery


class AsyncMemories(_Resource):
    """Long-term memory per subject (the end user an agent talks to)."""

    async def create(
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
        return await self._t.call(Memory, "POST", "/v1/memories", json=payload, headers=headers)

    async def list(self, subject: str, *, page_size: int = 50) -> AsyncIterator[Memory]:
        """Every memory of ``subject``, newest first."""
        async for memory in self._t.pages(Memory, "/v1/memories", {"subject": subject}, page_size):
            yield memory

    async def search(self, q: str, *, subject: str | None = None, k: int = 5) -> MemorySearch:
        """The ``k`` memories closest in meaning to ``q`` (of ``subject`` when given)."""
        query = params(q=q, subject=subject, k=k)
        return await self._t.call(MemorySearch, "GET", "/v1/memories/search", params=query)

    async def get(self, memory_id: str) -> Memory:
        """One memory."""
        return await self._t.call(Memory, "GET", f"/v1/memories/{seg(memory_id)}")

    async def delete(self, memory_id: str) -> None:
        """Delete one memory."""
        await self._t.send("DELETE", f"/v1/memories/{seg(memory_id)}")

    async def erase(self, subject: str) -> Erasure:
        """Erase everything stored about ``subject`` (right to be forgotten)."""
        return await self._t.call(Erasure, "DELETE", "/v1/memories", params={"subject": subject})


class AsyncSecrets(_Resource):
    """The tenant's secrets (values go in, never come out)."""

    async def set(self, name: str, value: str) -> Secret:
        """Store or replace a secret."""
        return await self._t.call(Secret, "POST", "/v1/secrets", json={"name": name, "value": value})

    async def list(self, *, page_size: int = 50) -> AsyncIterator[Secret]:
        """Every secret's name and dates, by name."""
        async for secret in self._t.pages(Secret, "/v1/secrets", {}, page_size):
            yield secret

    async def delete(self, name: str) -> None:
        """Delete a secret."""
        await self._t.send("DELETE", f"/v1/secrets/{seg(name)}")


class AsyncPipelines(_Resource):
    """Pipelines: versioned definitions, their runs and their schedule."""

    async def create(self, name: str, definition: Mapping[str, Any]) -> Pipeline:
        """Create a pipeline at version 1 (an invalid definition raises 422 with each problem's JSON pointer)."""
        return await self._t.call(Pipeline, "POST", "/v1/pipelines", json={"name": name, "definition": definition})

    async def list(self, *, page_size: int = 50) -> AsyncIterator[Pipeline]:
        """Every live pipeline of the tenant, newest first."""
        async for pipeline in self._t.pages(Pipeline, "/v1/pipelines", {}, page_size):
            yield pipeline

    async def get(self, pipeline_id: str) -> Pipeline:
        """A pipeline at its current version (archived ones too)."""
        return await self._t.call(Pipeline, "GET", f"/v1/pipelines/{seg(pipeline_id)}")

    async def update(self, pipeline_id: str, definition: Mapping[str, Any], *, name: str | None = None) -> Pipeline:
        """A new immutable version, made current; runs in flight keep theirs."""
        payload = body(definition=definition, name=name)
        return await self._t.call(Pipeline, "PUT", f"/v1/pipelines/{seg(pipeline_id)}", json=payload)

    async def versions(self, pipeline_id: str, *, page_size: int = 50) -> AsyncIterator[PipelineVersion]:
        """The pipeline's versions, newest first."""
        path = f"/v1/pipelines/{seg(pipeline_id)}/versions"
        async for version in self._t.pages(PipelineVersion, path, {}, page_size):
            yield version

    async def version(self, pipeline_id: str, version: int) -> PipelineVersion:
        """One version of the pipeline."""
        return await self._t.call(PipelineVersion, "GET", f"/v1/pipelines/{seg(pipeline_id)}/versions/{version}")

    async def delete(self, pipeline_id: str) -> None:
        """Archive the pipeline: it starts no new runs; it, its versions and its runs stay readable."""
        await self._t.send("DELETE", f"/v1/pipelines/{seg(pipeline_id)}")

    async def validate(self, definition: Mapping[str, Any]) -> PipelineValidation:
        """Check a definition without storing it: its problems, or its plan."""
        return await self._t.call(PipelineValidation, "POST", "/v1/pipelines/validate", json={"definition": definition})

    async def run(
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
        return await self._t.call(PipelineRun, "POST", path, json=payload, headers=headers)

    async def schedule(self, pipeline_id: str) -> PipelineSchedule:
        """The pipeline's schedule, with its next and recent firings."""
        return await self._t.call(PipelineSchedule, "GET", f"/v1/pipelines/{seg(pipeline_id)}/schedule")

    async def set_schedule(
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
        return await self._t.call(PipelineSchedule, "PUT", f"/v1/pipelines/{seg(pipeline_id)}/schedule", json=payload)

    async def delete_schedule(self, pipeline_id: str) -> None:
        """Delete the pipeline's schedule (its runs stay)."""
        await self._t.send("DELETE", f"/v1/pipelines/{seg(pipeline_id)}/schedule")

    async def backfill(self, pipeline_id: str, start: str, end: str) -> None:
        """Start the runs the schedule would have started between ``start`` and ``end`` (ISO 8601 times)."""
        path = f"/v1/pipelines/{seg(pipeline_id)}/schedule/backfill"
        await self._t.send("POST", path, json={"from": start, "to": end})


class AsyncPipelineRuns(_Resource):
    """Pipeline runs: read, list, wait for, decide approvals, cancel and re-run from a step."""

    async def get(self, run_id: str) -> PipelineRun:
        """A pipeline run with its steps."""
        return await self._t.call(PipelineRun, "GET", f"/v1/pipeline-runs/{seg(run_id)}")

    async def events(self, run_id: str, *, after: str | None = None) -> AsyncGenerator[Event, None]:
        """The run's events (after the event id ``after``) as they happen, until the stream ends."""
        async with aclosing(self._t.events(f"/v1/pipeline-runs/{seg(run_id)}/events", after=after)) as stream:
            async for event in stream:
                yield event

    async def list(
        self, *, pipeline_id: str | None = None, status: PipelineRunStatus | None = None, page_size: int = 50
    ) -> AsyncIterator[PipelineRun]:
        """Every pipeline run of the tenant (of ``pipeline_id``, in ``status``), newest first."""
        query = params(pipeline_id=pipeline_id, status=status)
        async for run in self._t.pages(PipelineRun, "/v1/pipeline-runs", query, page_size):
            yield run

    async def wait(self, run_id: str, *, timeout_s: float = 300, until: frozenset[str] = FINAL_STATUSES) -> PipelineRun:
        """The run once its status is in ``until`` (by default final); ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for interval in poll_intervals():
            run = await self.get(run_id)
            if run["status"] in until:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(f"pipeline run {run_id} is still {run['status']} after {timeout_s} s")
            await asyncio.sleep(interval)
        raise AssertionError("poll_intervals never ends")

    async def decide(
        self, run_id: str, step_id: str, decision: Literal["approve", "reject"], *, comment: str | None = None
    ) -> None:
        """Approve or reject the approval step ``step_id``."""
        path = f"/v1/pipeline-runs/{seg(run_id)}/approvals/{seg(step_id)}"
        await self._t.send("POST", path, json=body(decision=decision, comment=comment))

    async def approve(self, run_id: str, step_id: str, *, comment: str | None = None) -> None:
        """Approve the step ``step_id``."""
        await self.decide(run_id, step_id, "approve", comment=comment)

    async def reject(self, run_id: str, step_id: str, *, comment: str | None = None) -> None:
        """Reject the step ``step_id`` (it fails)."""
        await self.decide(run_id, step_id, "reject", comment=comment)

    async def cancel(self, run_id: str) -> None:
        """Cancel a run: its running steps are cancelled and it ends ``cancelled``."""
        await self._t.send("POST", f"/v1/pipeline-runs/{seg(run_id)}/cancel")

    async def rerun(self, run_id: str, from_step: str, *, version: int | None = None) -> PipelineRun:
        """A new run that reuses the outputs of every step that does not depend on ``from_step``."""
        payload = body(from_step=from_step, version=version)
        return await self._t.call(PipelineRun, "POST", f"/v1/pipeline-runs/{seg(run_id)}/rerun", json=payload)


class AsyncRecommendations(_Resource):
    """Changes mined from the tenant's history, with their evidence: list, refresh, apply or dismiss."""

    async def list(
        self,
        *,
        status: RecommendationStatus | None = None,
        kind: RecommendationKind | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[Recommendation]:
        """Every recommendation of the tenant (in ``status``, of ``kind``), newest first."""
        query = params(status=status, kind=kind)
        async for recommendation in self._t.pages(Recommendation, "/v1/recommendations", query, page_size):
            yield recommendation

    async def get(self, recommendation_id: str) -> Recommendation:
        """One recommendation."""
        return await self._t.call(Recommendation, "GET", f"/v1/recommendations/{seg(recommendation_id)}")

    async def refresh(self) -> RecommendationRefresh:
        """Start a mining pass of the tenant's history now (while one runs, that one is answered, ``reused``)."""
        return await self._t.call(RecommendationRefresh, "POST", "/v1/recommendations/refresh")

    async def apply(self, recommendation_id: str) -> Recommendation:
        """Make the change (it turns ``applied``); 409 when not open or its target changed (it turns ``stale``)."""
        path = f"/v1/recommendations/{seg(recommendation_id)}/apply"
        return await self._t.call(Recommendation, "POST", path)

    async def dismiss(self, recommendation_id: str, *, reason: str | None = None) -> Recommendation:
        """Dismiss it (``reason`` is kept with it): not suggested again unless its evidence changes materially."""
        path = f"/v1/recommendations/{seg(recommendation_id)}/dismiss"
        return await self._t.call(Recommendation, "POST", path, json=body(reason=reason))
