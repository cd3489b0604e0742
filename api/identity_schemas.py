"""Request and response bodies of identity and access routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from core.quotas import QuotaSpec
from core.roles import Role
from core.validation import SPACE, CleanModel

EMAIL_PATTERN = rf"^[^@{SPACE}\x00]{{1,64}}@[^@{SPACE}\x00]{{1,255}}$"
NAME = Field(min_length=1, max_length=200)


class TokenRequest(CleanModel):
    """``POST /v1/auth/token``."""

    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(CleanModel):
    """``POST /v1/auth/refresh`` and ``/logout``."""

    refresh_token: str = Field(min_length=1, max_length=200)


class TokenPair(BaseModel):
    """Access and refresh tokens."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_in: int


class Me(BaseModel):
    """``GET /v1/me``."""

    user_id: str | None
    api_key_id: str | None = None
    email: str | None
    tenant_id: str | None
    role: str
    permissions: list[str]


class TenantCreate(CleanModel):
    """``POST /v1/tenants``."""

    name: str = NAME
    owner_email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    owner_password: str = Field(min_length=12, max_length=1024)


class TenantOwnerSet(CleanModel):
    """``POST /v1/tenants/{id}/owners`` (platform admin): add an owner, or reset one by email."""

    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    password: str = Field(min_length=12, max_length=1024)


class TenantUpdate(CleanModel):
    """``PATCH /v1/tenants/{id}`` (platform admin)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    quotas: QuotaSpec | None = None
    egress_allowlist: list[str] | None = Field(default=None, max_length=100)

    @field_validator("egress_allowlist")
    @classmethod
    def _hosts(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if not item or len(item) > 255 or any(c.isspace() for c in item):
                raise ValueError(f"not a host or CIDR: {item!r}")
        return value


class TenantPublic(BaseModel):
    """A tenant."""

    id: str
    name: str
    quotas: dict[str, Any]
    egress_allowlist: list[str]
    created_at: datetime


class UserCreate(CleanModel):
    """``POST /v1/users``."""

    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    password: str = Field(min_length=12, max_length=1024)
    role: Role


class UserUpdate(CleanModel):
    """``PATCH /v1/users/{id}``."""

    role: Role


class UserPublic(BaseModel):
    """A user of the caller's tenant."""

    id: str
    email: str
    role: str
    created_at: datetime


class ApiKeyCreate(CleanModel):
    """``POST /v1/api-keys``."""

    name: str = NAME
    role: Role


class ApiKeyPublic(BaseModel):
    """An API key (never the key itself, except once at creation)."""

    id: str
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """The answer to ``POST /v1/api-keys``: ``key`` is shown this once."""

    key: str


class SecretCreate(CleanModel):
    """``POST /v1/secrets``."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    value: str = Field(min_length=1, max_length=16_384)


class SecretPublic(BaseModel):
    """A secret's name and dates; never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


class AuditEventPublic(BaseModel):
    """One audit event."""

    id: str
    actor_id: str
    actor_kind: str
    action: str
    target_type: str
    target_id: str
    data: dict[str, Any]
    created_at: datetime
