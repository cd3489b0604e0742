"""Session fixtures: one real embedded stack (the code `aimpact up` runs) for the suite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.db.engine import make_engine, make_sessionmaker
from core.provisioning import create_tenant, issue_api_key
from workers.embedded.stack import StackProcess


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The embedded stack, started once per test session."""
    home = Path(tmp_path_factory.mktemp("stack"))
    # The speech engines load on the first voice turn (once per session), not in every test session.
    env = {"AIMPACT_ACTIVITY_HEARTBEAT_TIMEOUT_S": "2", "AIMPACT_VOICE_WARM_ENGINES": "false"}
    process = StackProcess(home=home, extra_env=env)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
async def engine(stack: StackProcess) -> AsyncIterator[AsyncEngine]:
    """An engine on the stack's database (for setup and direct checks)."""
    eng = make_engine(stack.database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def temporal_client(stack: StackProcess) -> Client:
    """A client of the stack's Temporal server."""
    return await Client.connect(stack.temporal_address)


@dataclass
class TenantCtx:
    """A fresh tenant with an owner API key and an HTTP client using it."""

    id: str
    key: str
    http: httpx.AsyncClient

    async def key_for(self, engine: AsyncEngine, role: str) -> str:
        """Another API key of this tenant with ``role``."""
        async with make_sessionmaker(engine)() as session:
            _, minted = await issue_api_key(session, self.id, name=f"{role}-key", role=role)
        return minted.key


async def new_tenant(stack: StackProcess, engine: AsyncEngine) -> TenantCtx:
    """Provision a tenant and an owner key for one test."""
    async with make_sessionmaker(engine)() as session:
        tenant = await create_tenant(session, f"test-{uuid.uuid4().hex[:8]}")
        _, minted = await issue_api_key(session, tenant.id, name="owner", role="owner")
    http = httpx.AsyncClient(base_url=stack.api_url, headers={"Authorization": f"Bearer {minted.key}"}, timeout=30)
    return TenantCtx(id=tenant.id, key=minted.key, http=http)


@pytest.fixture
async def tenant(stack: StackProcess, engine: AsyncEngine) -> AsyncIterator[TenantCtx]:
    """Each test gets its own tenant."""
    ctx = await new_tenant(stack, engine)
    yield ctx
    await ctx.http.aclose()


@pytest.fixture
async def other_tenant(stack: StackProcess, engine: AsyncEngine) -> AsyncIterator[TenantCtx]:
    """A second tenant, for isolation checks."""
    ctx = await new_tenant(stack, engine)
    yield ctx
    await ctx.http.aclose()
