"""Users and sign-in for tests."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.engine import make_sessionmaker
from core.db.models import User
from core.ids import new_id
from core.security import hash_password
from workers.embedded.stack import StackProcess

PASSWORD = "correct horse battery staple"


async def make_user(engine: AsyncEngine, tenant_id: str, role: str = "developer") -> str:
    """A user of ``tenant_id``; returns the email."""
    email = f"u-{uuid.uuid4().hex[:10]}@example.com"
    async with make_sessionmaker(engine)() as session:
        session.add(
            User(id=new_id("usr"), tenant_id=tenant_id, email=email, password_hash=hash_password(PASSWORD), role=role)
        )
        await session.commit()
    return email


async def login(stack: StackProcess, email: str, password: str = PASSWORD) -> httpx.Response:
    """``POST /v1/auth/token`` with an email and password."""
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        return await client.post("/v1/auth/token", json={"email": email, "password": password})


async def platform_admin_token(stack: StackProcess) -> str:
    """An access token of the stack's platform admin."""
    response = await login(stack, "admin@aimpact.local", stack.admin_password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
