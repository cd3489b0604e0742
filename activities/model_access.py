"""An agent version's configuration, model provider and API key: shared by model steps and memory extraction."""

from __future__ import annotations

from typing import Protocol

from temporalio.exceptions import ApplicationError

from core import errors
from core.agents import AgentConfig
from core.contracts.llm import ModelConfig
from core.db.projection import RunProjection
from core.egress import EgressDenied
from core.llm.base import LlmProvider, ProviderRegistry


class SecretResolver(Protocol):
    """Resolves a tenant secret by name (the only place its plaintext exists, in memory)."""

    async def reveal(self, tenant_id: str, name: str) -> str | None:
        """The secret's value, or ``None``."""
        ...


class EgressCheck(Protocol):
    """Refuses (``EgressDenied``) a URL the tenant may not reach."""

    async def __call__(self, tenant_id: str, url: str) -> None: ...


class ModelAccess:
    """Agent configurations (cached: versions are immutable), providers, and API keys behind the egress check."""

    def __init__(
        self,
        projection: RunProjection,
        providers: ProviderRegistry,
        *,
        secrets: SecretResolver | None = None,
        egress: EgressCheck | None = None,
    ):
        self._projection = projection
        self._providers = providers
        self._secrets = secrets
        self._egress = egress
        self._configs: dict[tuple[str, str, int], AgentConfig] = {}

    async def config(self, tenant_id: str, agent_id: str, version: int) -> AgentConfig:
        """The configuration of the agent's ``version``; a version that does not exist fails for good."""
        key = (tenant_id, agent_id, version)
        if key not in self._configs:
            raw = await self._projection.agent_config(tenant_id, agent_id, version)
            if raw is None:
                raise ApplicationError(
                    f"agent {agent_id} v{version} not found", type=errors.AGENT_NOT_FOUND, non_retryable=True
                )
            self._configs[key] = AgentConfig.model_validate(raw)
        return self._configs[key]

    def cached_config(self, tenant_id: str, agent_id: str, version: int) -> AgentConfig | None:
        """The configuration of the agent's ``version`` if this process read it already."""
        return self._configs.get((tenant_id, agent_id, version))

    def cache_config(self, tenant_id: str, agent_id: str, version: int, config: AgentConfig) -> None:
        """Keep a configuration read elsewhere (``begin`` reads it with the run)."""
        self._configs[(tenant_id, agent_id, version)] = config

    def provider(self, name: str) -> LlmProvider:
        """The provider ``name``; one this worker lacks fails for good."""
        try:
            return self._providers.get(name)
        except KeyError:
            raise ApplicationError(
                f"provider {name!r} is not configured on this worker",
                type=errors.PROVIDER_REJECTED,
                non_retryable=True,
            ) from None

    async def api_key(self, tenant_id: str, model: ModelConfig) -> str | None:
        """The model's API key from the tenant's secrets, after the egress check of its ``base_url``."""
        if model.base_url and self._egress is not None:
            try:
                await self._egress(tenant_id, model.base_url)
            except EgressDenied as exc:
                raise ApplicationError(
                    f"{model.provider}: base_url refused by the egress policy: {exc.reason}",
                    type=errors.PROVIDER_REJECTED,
                    non_retryable=True,
                ) from None
        api_key = None
        if model.api_key_secret and self._secrets is not None:
            api_key = await self._secrets.reveal(tenant_id, model.api_key_secret)
            if api_key is None:
                raise ApplicationError(
                    f"secret {model.api_key_secret!r} named by the agent does not exist",
                    type=errors.PROVIDER_REJECTED,
                    non_retryable=True,
                )
        return api_key
