"""Roles, permissions and the one table that maps each role to its permissions."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Role = Literal["owner", "admin", "developer", "operator", "viewer"]
ROLES: tuple[Role, ...] = ("owner", "admin", "developer", "operator", "viewer")
PLATFORM_ADMIN = "platform_admin"
"""Role of platform administrators: they manage tenants, not a tenant's data."""
PLATFORM_TENANT = "platform"
"""The ``tid`` claim of platform administrators' tokens."""


class Permission(StrEnum):
    """Every permission a route requires (``<resource>:<action>``).

    A permission exists while a route requires it (a test checks): a capability adds its
    own together with its routes.
    """

    AGENTS_READ = "agents:read"
    AGENTS_WRITE = "agents:write"
    PIPELINES_READ = "pipelines:read"
    PIPELINES_WRITE = "pipelines:write"
    RUNS_READ = "runs:read"
    RUNS_START = "runs:start"
    RUNS_APPROVE = "runs:approve"
    RUNS_CANCEL = "runs:cancel"
    RUNS_FEEDBACK = "runs:feedback"
    USAGE_READ = "usage:read"
    TOOLS_READ = "tools:read"
    TOOLS_WRITE = "tools:write"
    MEMORY_READ = "memory:read"
    MEMORY_WRITE = "memory:write"
    MEMORY_ERASE = "memory:erase"
    OPTIMIZER_READ = "optimizer:read"
    OPTIMIZER_WRITE = "optimizer:write"
    VOICE_READ = "voice:read"
    VOICE_WRITE = "voice:write"
    RECOMMENDATIONS_READ = "recommendations:read"
    RECOMMENDATIONS_WRITE = "recommendations:write"
    SECRETS_READ = "secrets:read"
    SECRETS_WRITE = "secrets:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    KEYS_MANAGE = "keys:manage"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    AUDIT_READ = "audit:read"
    TENANT_READ = "tenant:read"
    PLATFORM_TENANTS = "platform:tenants"
    PLATFORM_CODEC = "platform:codec"


_P = Permission
_VIEW = {
    _P.AGENTS_READ,
    _P.PIPELINES_READ,
    _P.RUNS_READ,
    _P.USAGE_READ,
    _P.TOOLS_READ,
    _P.MEMORY_READ,
    _P.OPTIMIZER_READ,
    _P.VOICE_READ,
    _P.RECOMMENDATIONS_READ,
    _P.TENANT_READ,
}
_OPERATE = _VIEW | {
    _P.RUNS_START,
    _P.RUNS_APPROVE,
    _P.RUNS_CANCEL,
    _P.RUNS_FEEDBACK,
    _P.VOICE_WRITE,
    _P.RECOMMENDATIONS_WRITE,
}
"""Operators talk to agents and triage recommendations (refresh, dismiss).

Applying a recommendation also needs the permission its change needs."""
_DEVELOP = _OPERATE | {
    _P.AGENTS_WRITE,
    _P.PIPELINES_WRITE,
    _P.SECRETS_READ,
    _P.SECRETS_WRITE,
    _P.TOOLS_WRITE,
    _P.WEBHOOKS_MANAGE,
    _P.MEMORY_WRITE,
    _P.OPTIMIZER_WRITE,
}
_ADMIN = _DEVELOP | {_P.KEYS_MANAGE, _P.USERS_READ, _P.USERS_MANAGE, _P.AUDIT_READ}

PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": frozenset(_VIEW),
    "operator": frozenset(_OPERATE),
    "developer": frozenset(_DEVELOP),
    "admin": frozenset(_ADMIN),
    "owner": frozenset(_ADMIN | {_P.MEMORY_ERASE}),
    PLATFORM_ADMIN: frozenset({_P.PLATFORM_TENANTS, _P.PLATFORM_CODEC, _P.TENANT_READ}),
}
"""The permission table. Every route declares one of these permissions."""

RANK: dict[str, int] = {"viewer": 1, "operator": 2, "developer": 3, "admin": 4, "owner": 5}


def permissions_of(role: str) -> frozenset[Permission]:
    """Permissions of ``role`` (none for an unknown role)."""
    return PERMISSIONS.get(role, frozenset())


def may_grant(granter_role: str, role: str) -> bool:
    """Whether a principal with ``granter_role`` may give out ``role`` (never above its own)."""
    return RANK.get(granter_role, 0) >= RANK.get(role, 99)
