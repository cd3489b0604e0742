"""Roles and the one table that maps each role to its permissions."""

from __future__ import annotations

from typing import Literal

Role = Literal["owner", "admin", "developer", "operator", "viewer"]
ROLES: tuple[Role, ...] = ("owner", "admin", "developer", "operator", "viewer")
PLATFORM_ADMIN = "platform_admin"
"""Role of platform administrators: they manage tenants, not a tenant's data."""
PLATFORM_TENANT = "platform"
"""The ``tid`` claim of platform administrators' tokens."""

_VIEW = {"agents:read", "runs:read", "usage:read", "tools:read", "memory:read", "tenant:read"}
_OPERATE = _VIEW | {"runs:start", "runs:approve", "runs:cancel", "runs:feedback"}
_DEVELOP = _OPERATE | {
    "agents:write",
    "secrets:read",
    "secrets:write",
    "tools:write",
    "webhooks:manage",
    "memory:write",
    "optimizer:manage",
}
_ADMIN = _DEVELOP | {"keys:manage", "users:read", "users:manage", "audit:read"}

PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(_VIEW),
    "operator": frozenset(_OPERATE),
    "developer": frozenset(_DEVELOP),
    "admin": frozenset(_ADMIN),
    "owner": frozenset(_ADMIN | {"memory:erase"}),
    PLATFORM_ADMIN: frozenset({"platform:tenants", "platform:codec", "tenant:read"}),
}
"""The permission table. Every route declares one of these permissions."""

RANK: dict[str, int] = {"viewer": 1, "operator": 2, "developer": 3, "admin": 4, "owner": 5}


def permissions_of(role: str) -> frozenset[str]:
    """Permissions of ``role`` (none for an unknown role)."""
    return PERMISSIONS.get(role, frozenset())


def may_grant(granter_role: str, role: str) -> bool:
    """Whether a principal with ``granter_role`` may give out ``role`` (never above its own)."""
    return RANK.get(granter_role, 0) >= RANK.get(role, 99)
