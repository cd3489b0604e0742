"""What a worker's model calls need: the model providers and the egress check of a model's ``base_url``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.model_access import EgressCheck
from core.egress import check_url, tenant_allowlist_loader
from core.llm.anthropic_provider import AnthropicProvider
from core.llm.base import ProviderRegistry
from core.llm.local import LocalProvider
from core.llm.openai_provider import OpenAIProvider
from core.llm.pricing import PriceTable
from core.settings import Settings


def model_providers(settings: Settings) -> ProviderRegistry:
    """The local, OpenAI and Anthropic providers, priced per ``model_prices`` (list prices by default)."""
    prices = PriceTable.from_json(settings.model_prices) if settings.model_prices else PriceTable()
    return ProviderRegistry([LocalProvider(prices), OpenAIProvider(prices=prices), AnthropicProvider(prices=prices)])


def egress_check(sessions: async_sessionmaker[AsyncSession], platform: list[str]) -> EgressCheck:
    """Refuses a URL outside the ``platform`` allowlist and the tenant's own."""
    allowlist_for = tenant_allowlist_loader(sessions)

    async def egress(tenant_id: str, url: str) -> None:
        await check_url(url, allowlist=[*platform, *await allowlist_for(tenant_id)])

    return egress
