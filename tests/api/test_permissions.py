"""Every route × every role matches the permission table, read from the app's route table."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.roles import PERMISSIONS, PLATFORM_ADMIN, ROLES
from tests.api.routes_table import api_routes, is_public
from tests.conftest import TenantCtx
from workers.embedded.stack import StackProcess

ROUTES = api_routes()


def test_every_route_declares_a_permission_or_is_public() -> None:
    undeclared = [f"{r.method} {r.path}" for r in ROUTES if r.permission is None and not is_public(r)]
    assert undeclared == []
    known = set().union(*PERMISSIONS.values()) | {"authenticated"}
    assert {r.permission for r in ROUTES if r.permission} <= known


async def _platform_admin_token(stack: StackProcess) -> str:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post(
            "/v1/auth/token", json={"email": "admin@aimpact.local", "password": stack.admin_password}
        )
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize("role", [*ROLES, PLATFORM_ADMIN])
async def test_route_role_matrix(role: str, stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine) -> None:
    token = await _platform_admin_token(stack) if role == PLATFORM_ADMIN else await tenant.key_for(engine, role)
    granted = PERMISSIONS[role] | {"authenticated"}
    mismatches = []
    async with httpx.AsyncClient(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}) as client:
        for route in ROUTES:
            if route.permission is None:
                continue
            response = await client.request(route.method, route.url(), json={} if route.method != "GET" else None)
            allowed = route.permission in granted
            if response.status_code >= 500 or response.status_code == 401:
                mismatches.append(f"{route.method} {route.path}: {response.status_code}")
            elif allowed == (response.status_code == 403):
                mismatches.append(f"{route.method} {route.path}: {role} got {response.status_code}")
    assert mismatches == []
