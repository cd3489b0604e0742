"""One dependency alias per permission: a route declares what it needs as ``principal: RunsRead``.

Each alias authenticates the caller (401 otherwise), checks the permission of
:data:`core.roles.PERMISSIONS` (403 otherwise) and hands the route the :class:`Principal`.
The name is the permission in CamelCase: ``runs:read`` → ``RunsRead``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.deps import Principal, PrincipalDep, require
from core.roles import Permission

AUTHENTICATED = "authenticated"
"""The pseudo-permission of routes open to every authenticated caller (``GET /v1/me``)."""


async def _authenticated(principal: PrincipalDep) -> Principal:
    return principal


_authenticated.permission = AUTHENTICATED  # type: ignore[attr-defined]

Authenticated = Annotated[Principal, Depends(_authenticated)]
AgentsRead = Annotated[Principal, Depends(require(Permission.AGENTS_READ))]
AgentsWrite = Annotated[Principal, Depends(require(Permission.AGENTS_WRITE))]
PipelinesRead = Annotated[Principal, Depends(require(Permission.PIPELINES_READ))]
PipelinesWrite = Annotated[Principal, Depends(require(Permission.PIPELINES_WRITE))]
RunsRead = Annotated[Principal, Depends(require(Permission.RUNS_READ))]
RunsStart = Annotated[Principal, Depends(require(Permission.RUNS_START))]
RunsApprove = Annotated[Principal, Depends(require(Permission.RUNS_APPROVE))]
RunsCancel = Annotated[Principal, Depends(require(Permission.RUNS_CANCEL))]
RunsFeedback = Annotated[Principal, Depends(require(Permission.RUNS_FEEDBACK))]
UsageRead = Annotated[Principal, Depends(require(Permission.USAGE_READ))]
ToolsRead = Annotated[Principal, Depends(require(Permission.TOOLS_READ))]
ToolsWrite = Annotated[Principal, Depends(require(Permission.TOOLS_WRITE))]
MemoryRead = Annotated[Principal, Depends(require(Permission.MEMORY_READ))]
MemoryWrite = Annotated[Principal, Depends(require(Permission.MEMORY_WRITE))]
MemoryErase = Annotated[Principal, Depends(require(Permission.MEMORY_ERASE))]
OptimizerRead = Annotated[Principal, Depends(require(Permission.OPTIMIZER_READ))]
OptimizerWrite = Annotated[Principal, Depends(require(Permission.OPTIMIZER_WRITE))]
VoiceRead = Annotated[Principal, Depends(require(Permission.VOICE_READ))]
VoiceWrite = Annotated[Principal, Depends(require(Permission.VOICE_WRITE))]
RecommendationsRead = Annotated[Principal, Depends(require(Permission.RECOMMENDATIONS_READ))]
RecommendationsWrite = Annotated[Principal, Depends(require(Permission.RECOMMENDATIONS_WRITE))]
SecretsRead = Annotated[Principal, Depends(require(Permission.SECRETS_READ))]
SecretsWrite = Annotated[Principal, Depends(require(Permission.SECRETS_WRITE))]
WebhooksManage = Annotated[Principal, Depends(require(Permission.WEBHOOKS_MANAGE))]
KeysManage = Annotated[Principal, Depends(require(Permission.KEYS_MANAGE))]
UsersRead = Annotated[Principal, Depends(require(Permission.USERS_READ))]
UsersManage = Annotated[Principal, Depends(require(Permission.USERS_MANAGE))]
AuditRead = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
TenantRead = Annotated[Principal, Depends(require(Permission.TENANT_READ))]
PlatformTenants = Annotated[Principal, Depends(require(Permission.PLATFORM_TENANTS))]
PlatformCodec = Annotated[Principal, Depends(require(Permission.PLATFORM_CODEC))]
