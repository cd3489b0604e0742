"""What running and scoring a candidate outside a real run needs, resolved as a real run resolves it.

``CandidateAccess.setup`` reads an agent version's configuration and resolves its provider,
its API key (the tenant's secrets behind the egress check) and its tools' schemas through the
tenant's ``ToolResolver``. ``CandidateAccess.run`` runs it on one input (a provider failure
becomes the ``ApplicationError`` of the retry policy). ``CandidateAccess.score`` scores one
output with a metric; a judge metric calls its own model, or the agent's. Optimizer evaluations
and replays share all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.model_access import ModelAccess
from core import errors
from core.agents import AgentConfig
from core.contracts.llm import ChatMessage, LlmRequest, ToolSchema, Usage
from core.contracts.optimizer import JUDGE_FAILED
from core.llm.base import LlmProvider, ProviderError
from core.optimizer.candidate_run import CandidateOutput, run_candidate
from core.optimizer.metrics import JudgeAnswerError, JudgeMetric, Metric, Score, score_output
from core.optimizer.tool_answers import ToolAnswerer
from core.tools.base import ToolResolver


def provider_error(exc: ProviderError, *, kind: str | None = None, what: str = "") -> ApplicationError:
    """A provider failure for the retry policy: retryable ones are retried, the others fail the run."""
    message = f"{what}{exc.provider}: {exc}"
    error_type = kind or (errors.PROVIDER_UNAVAILABLE if exc.retryable else errors.PROVIDER_REJECTED)
    return ApplicationError(
        message, {"provider": exc.provider, "status": exc.status}, type=error_type, non_retryable=not exc.retryable
    )


@dataclass(frozen=True)
class CandidateSetup:
    """An agent version ready to run: its configuration, provider, API key and tool schemas."""

    config: AgentConfig
    provider: LlmProvider
    api_key: str | None
    tools: list[ToolSchema]


class CandidateAccess:
    """Resolves candidates and scores their outputs for one worker's model access and tools."""

    def __init__(self, models: ModelAccess, tools: ToolResolver):
        self.models = models
        self.tools = tools

    async def setup(self, tenant_id: str, agent_id: str, version: int) -> CandidateSetup:
        """Version ``version`` of the agent, resolved for the tenant."""
        config = await self.models.config(tenant_id, agent_id, version)
        return await self.resolve(tenant_id, config)

    async def resolve(self, tenant_id: str, config: AgentConfig) -> CandidateSetup:
        """``config`` resolved for the tenant."""
        provider = self.models.provider(config.model.provider)
        api_key = await self.models.api_key(tenant_id, config.model.to_contract())
        names = [t.name for t in config.tools]
        tools = await self.tools.schemas(tenant_id, names) if names else []
        return CandidateSetup(config, provider, api_key, list(tools))

    async def run(
        self, setup: CandidateSetup, input: str, answerer: ToolAnswerer, *, max_steps: int
    ) -> CandidateOutput:
        """``setup`` run on ``input`` with its tool calls answered by ``answerer``.

        Raises:
            ApplicationError: the model failed (retryable or not, as the provider says).
        """
        try:
            return await run_candidate(
                setup.config,
                input,
                provider=setup.provider,
                answerer=answerer,
                tools=setup.tools,
                max_steps=max_steps,
                api_key=setup.api_key,
            )
        except ProviderError as exc:
            raise provider_error(exc) from exc

    async def score(
        self,
        tenant_id: str,
        metric: Metric,
        setup: CandidateSetup,
        *,
        output: str,
        expected: Any = None,
        input: Any = None,
        rubric: str | None = None,
    ) -> tuple[Score, Usage]:
        """The metric's score of ``output`` and what its judge call cost (nothing for a rule metric).

        Raises:
            ApplicationError: the judge model failed (``JudgeFailed`` naming it, or a retryable provider error).
        """
        spent = Usage()
        if not isinstance(metric, JudgeMetric):
            return await score_output(metric, output=output, expected=expected), spent
        model, api_key = setup.config.model.to_contract(), setup.api_key
        if metric.model is not None:
            model = metric.model.to_contract()
            api_key = await self.models.api_key(tenant_id, model)
        provider = self.models.provider(model.provider)
        name = f"judge model {model.provider}:{model.name}: "

        async def judge(prompt: str) -> str:
            nonlocal spent
            request = LlmRequest(model=model, messages=[ChatMessage(role="user", content=prompt)], api_key=api_key)
            try:
                response = await provider.complete(request)
            except ProviderError as exc:
                raise provider_error(exc, kind=JUDGE_FAILED, what=name) from exc
            spent = spent.add(response.usage)
            return response.content

        try:
            score = await score_output(
                metric, output=output, expected=expected, input=input, rubric=rubric, judge=judge
            )
        except JudgeAnswerError as exc:
            raise ApplicationError(f"{name}{exc}", type=JUDGE_FAILED) from exc
        return score, spent
