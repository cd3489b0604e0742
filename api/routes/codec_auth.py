"""Who may use the codec endpoint: platform operators, by bearer token or codec-session cookie.

The Temporal UI cannot attach our bearer token, so a platform administrator
opens a codec session (``POST /v1/auth/codec-session``), which sets a
short-lived HttpOnly cookie scoped to ``/codec``; with "include cross-origin
credentials" enabled in the UI's data-encoder settings, the UI's calls carry it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import StateDep, get_principal, principal_from_claims
from api.permissions import PlatformCodec
from api.problem_types import ProblemType
from api.problems import ProblemError
from core.auth.jwt_keys import TokenError
from core.roles import PLATFORM_TENANT, Permission

COOKIE = "aimpact_codec"
router = APIRouter(tags=["auth"])


async def authorize_codec(request: Request, state: StateDep) -> None:
    """Admit a platform administrator's bearer credentials or codec-session cookie."""
    if request.headers.get("authorization"):
        principal = await get_principal(request, state)
        if Permission.PLATFORM_CODEC not in principal.permissions:
            raise ProblemError(403, "the codec is for platform operators", slug=ProblemType.FORBIDDEN)
        return
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise ProblemError(
            401, "missing credentials", slug=ProblemType.UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        claims = state.jwt.verify(cookie)
    except TokenError:
        raise ProblemError(401, "invalid codec session", slug=ProblemType.UNAUTHORIZED) from None
    if claims.get("scope") != "codec" or not (await principal_from_claims(state, claims)).is_platform_admin:
        raise ProblemError(401, "invalid codec session", slug=ProblemType.UNAUTHORIZED)


authorize_codec.permission = Permission.PLATFORM_CODEC  # type: ignore[attr-defined]


@router.post("/v1/auth/codec-session", status_code=204, response_class=Response)
async def open_codec_session(state: StateDep, principal: PlatformCodec) -> Response:
    """Set the codec-session cookie that lets the Temporal UI decrypt payloads."""
    token = state.jwt.issue(
        subject=principal.subject_id, tenant_id=PLATFORM_TENANT, platform=True, extra={"scope": "codec"}
    )
    response = Response(status_code=204)
    response.set_cookie(
        COOKIE, token, max_age=state.jwt.ttl_s, httponly=True, samesite="lax", path="/codec", secure=False
    )
    return response
