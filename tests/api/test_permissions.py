"""Every route × every role matches the permission table, read from the app's route table."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.roles import PERMISSIONS, PLATFORM_ADMIN, ROLES, Permission
from tests.api.routes_table import api_routes, is_public
from tests.conftest import TenantCtx
from tests.support.users import platform_admin_token
from workers.embedded.stack import StackProcess

ROUTES = api_routes()


def test_every_route_declares_a_permission_or_is_public() -> None:
    undeclared = [f"{r.method} {r.path}" for r in ROUTES if r.permission is None and not is_public(r)]
    assert undeclared == []
    known = set().union(*PERMISSIONS.values()) | {"authenticated"}
    assert {r.permission for r in ROUTES if r.permission} <= known


def test_the_readme_roles_table_lists_the_permissions_routes_use() -> None:
    """A permission no route requires grants nothing: it has no place in the table or the README."""
    assert set(Permission) - {r.permission for r in ROUTES} == set()
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("### Roles and permissions", 1)[1].split("\n\n| permission |", 1)[1].split("\n\n", 1)[0]
    header, _, *lines = table.splitlines()
    roles = [name.strip().replace(" ", "_") for name in header.split("|")[:-1]]
    assert sorted(roles) == sorted([*ROLES, PLATFORM_ADMIN])
    rows = [line.split("|")[1:-1] for line in lines]
    shown: dict[str, set[str]] = {role: set() for role in roles}
    for cells in rows:
        named = re.findall(r"`([a-z]+:[a-z]+)`", cells[0])
        for role, cell in zip(roles, cells[1:], strict=True):
            marked = re.findall(r"`([a-z]+:[a-z]+)`", cell) if "`" in cell else named if "✓" in cell else []
            shown[role] |= set(marked)
    assert shown == {role: {str(p) for p in PERMISSIONS[role]} for role in roles}


@pytest.mark.parametrize("role", [*ROLES, PLATFORM_ADMIN])
async def test_route_role_matrix(role: str, stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine) -> None:
    token = await platform_admin_token(stack) if role == PLATFORM_ADMIN else await tenant.key_for(engine, role)
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
