"""Browser sessions: the access token in the answer, the refresh token in an HttpOnly cookie.

The dashboard keeps its short-lived access token in memory only; the refresh token never
reaches a script (a cross-site script cannot read it). The cookie is ``HttpOnly``,
``SameSite=Strict`` and scoped to ``/v1/auth/session``: the browser sends it to these routes
only, never on a cross-site request. Rotation and reuse detection are those of
``POST /v1/auth/refresh`` (a spent cookie revokes its family).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from api.deps import SessionDep, StateDep
from api.identity_schemas import TokenRequest
from api.problem_types import ProblemType, problems
from api.problems import problem_response
from api.routes.auth import access_token, sign_in
from api.state import AppState
from core.auth.jwt_keys import TokenError
from core.db.models import User

COOKIE = "aimpact_session"
PATH = "/v1/auth/session"
router = APIRouter(tags=["auth"])
MAX_COOKIE_CHARS = 200


class AccessToken(BaseModel):
    """An access token; the refresh token travels in the session cookie."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_in: int


def _secure(request: Request, state: AppState) -> bool:
    """Mark the cookie ``Secure`` when the API is reached over HTTPS."""
    public = state.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def _answer(request: Request, state: AppState, user: User, refresh_token: str) -> Response:
    body = AccessToken(access_token=access_token(state, user), expires_in=state.jwt.ttl_s)
    response = Response(body.model_dump_json(), media_type="application/json", headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        refresh_token,
        max_age=state.settings.refresh_token_ttl_s,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request, state),
    )
    return response


def _signed_out(request: Request, state: AppState, detail: str | None = None) -> Response:
    """204 (sign-out) or a 401 problem (``detail``), clearing the cookie either way."""
    if detail is None:
        response = Response(status_code=204)
    else:
        response = problem_response(401, detail, slug=ProblemType.UNAUTHORIZED)
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict", secure=_secure(request, state))
    return response


@router.post(PATH, response_model=AccessToken, responses=problems(401, 429))
async def open_session(body: TokenRequest, request: Request, state: StateDep, session: SessionDep) -> Response:
    """Sign in from a browser: an access token, and the refresh token as an HttpOnly cookie."""
    user = await sign_in(body, request, state, session)
    return _answer(request, state, user, await state.refresh_tokens.issue(session, user))


def _cookie(request: Request) -> str | None:
    """The session cookie the browser sent (not a declared parameter: no script sets it, so no schema shapes it)."""
    value = request.cookies.get(COOKIE)
    return value if value and len(value) <= MAX_COOKIE_CHARS else None


@router.post(f"{PATH}/refresh", response_model=AccessToken, responses=problems(401))
async def refresh_session(request: Request, state: StateDep, session: SessionDep) -> Response:
    """A new access token for the session cookie; the cookie rotates (a spent one revokes its family).

    The browser sends the ``aimpact_session`` cookie that ``POST /v1/auth/session`` set; without
    a valid one the answer is 401 and the cookie is cleared.
    """
    refresh_cookie = _cookie(request)
    if not refresh_cookie:
        return _signed_out(request, state, "no session: sign in")
    try:
        user, successor = await state.refresh_tokens.rotate(session, refresh_cookie)
    except TokenError as exc:
        return _signed_out(request, state, str(exc))
    return _answer(request, state, user, successor)


@router.post(f"{PATH}/logout", status_code=204, response_class=Response)
async def close_session(request: Request, state: StateDep, session: SessionDep) -> Response:
    """Sign out: revoke the session cookie's family and clear the cookie."""
    refresh_cookie = _cookie(request)
    if refresh_cookie:
        await state.refresh_tokens.revoke(session, refresh_cookie)
    return _signed_out(request, state)
