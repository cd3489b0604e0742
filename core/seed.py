"""First-boot seed: platform admin, demo tenant with owner, API key and demo agent."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select

from core.agents import AgentConfig
from core.db.engine import make_sessionmaker
from core.db.models import Tenant, User
from core.db.repos import AgentRepository
from core.ids import new_id
from core.provisioning import create_tenant, issue_api_key
from core.security import api_key_from_secret, generate_password, hash_password, mint_api_key
from core.settings import Settings

DEMO_TENANT = "Demo"
DEMO_OWNER_EMAIL = "owner@demo.aimpact.local"
DEMO_AGENT = AgentConfig.model_validate(
    {
        "name": "demo-assistant",
        "instructions": "You are a helpful assistant. Use the calculator for arithmetic.",
        "model": {"provider": "local", "name": "local-echo"},
        "tools": ["calculator", "current_time"],
    }
)


@dataclass
class SeedResult:
    """What first boot created; secrets are present only when just generated."""

    admin_email: str
    demo_owner_email: str
    tenant_id: str
    agent_id: str
    admin_password: str | None = None
    api_key: str | None = None


def credentials_file(settings: Settings) -> Path:
    """Where first-boot credentials are kept (mode 0600)."""
    return settings.home / "credentials.json"


async def seed_if_empty(engine: AsyncEngine, settings: Settings) -> SeedResult | None:
    """Seed a fresh database; do nothing (return ``None``) if a tenant exists."""
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        count = (await session.exec(select(func.count()).select_from(Tenant))).one()
        if count:
            return None
        password = settings.admin_password.get_secret_value() if settings.admin_password else generate_password()
        key = (
            api_key_from_secret(settings.bootstrap_api_key.get_secret_value())
            if settings.bootstrap_api_key
            else mint_api_key()
        )
        tenant = await create_tenant(session, DEMO_TENANT)
        admin = User(
            id=new_id("usr"),
            email=settings.admin_email,
            password_hash=hash_password(password),
            role="owner",
            is_platform_admin=True,
        )
        owner = User(
            id=new_id("usr"),
            tenant_id=tenant.id,
            email=DEMO_OWNER_EMAIL,
            password_hash=hash_password(password),
            role="owner",
        )
        session.add_all([admin, owner])
        await session.commit()
        await issue_api_key(session, tenant.id, name="bootstrap", role="owner", user_id=owner.id, key=key)
        agent, _ = await AgentRepository(session, tenant.id).create(DEMO_AGENT)
    result = SeedResult(
        admin_email=settings.admin_email,
        demo_owner_email=DEMO_OWNER_EMAIL,
        tenant_id=tenant.id,
        agent_id=agent.id,
        admin_password=password,
        api_key=key.key,
    )
    path = credentials_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2))
    return result


def stored_credentials(settings: Settings) -> SeedResult | None:
    """The credentials written at first boot, if the file is still there."""
    path = credentials_file(settings)
    if not path.exists():
        return None
    return SeedResult(**json.loads(path.read_text()))
