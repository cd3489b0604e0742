"""Roles and the one table that maps each role to its permissions."""

from __future__ import annotations

from typing import Literal

Role = Literal["owner", "admin", "developer", "operator", "viewer"]
ROLES: tuple[Role, ...] = ("owner", "admin", "developer", "operator", "viewer")

_READ = {"agents:read", "runs:read", "usage:read"}
_OPERATE = _READ | {"runs:start", "runs:approve", "runs:cancel"}
_DEVELOP = _OPERATE | {"agents:write", "secrets:write", "tools:write"}
_ADMIN = _DEVELOP | {"keys:manage", "users:manage", "webhooks:manage"}

PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(_READ),
    "operator": frozenset(_OPERATE),
    "developer": frozenset(_DEVELOP),
    "admin": frozenset(_ADMIN),
    "owner": frozenset(_ADMIN | {"tenant:manage"}),
}


def permissions_of(role: str) -> frozenset[str]:
    """Permissions of ``role`` (none for an unknown role)."""
    return PERMISSIONS.get(role, frozenset())
