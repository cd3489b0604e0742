"""Browser sessions: the refresh token lives in an HttpOnly, SameSite=Strict cookie scoped to its routes."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.routes.sessions import COOKIE
from tests.conftest import TenantCtx
from tests.support.users import PASSWORD, make_user
from workers.embedded.stack import StackProcess


def _set_cookie(response: httpx.Response) -> str:
    headers = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(f"{COOKIE}=")]
    assert len(headers) == 1, response.headers
    return headers[0]


async def test_session_sign_in_refresh_and_sign_out(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    email = await make_user(engine, tenant.id, "viewer")
    async with httpx.AsyncClient(base_url=stack.api_url) as browser:
        opened = await browser.post("/v1/auth/session", json={"email": email, "password": PASSWORD})
        assert opened.status_code == 200, opened.text
        body = opened.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}  # no refresh token for scripts
        assert opened.headers["cache-control"] == "no-store"
        cookie = _set_cookie(opened).lower()
        for attribute in ("httponly", "samesite=strict", "path=/v1/auth/session", "max-age="):
            assert attribute in cookie, cookie
        assert "secure" not in cookie  # plain http here; https (or an https public URL) adds it
        me = await browser.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert (me.json()["email"], me.json()["role"]) == (email, "viewer")

        first_cookie = browser.cookies[COOKIE]
        refreshed = await browser.post("/v1/auth/session/refresh")
        assert refreshed.status_code == 200, refreshed.text
        assert set(refreshed.json()) == {"access_token", "token_type", "expires_in"}
        assert browser.cookies[COOKIE] != first_cookie  # rotated

        # a stolen copy of the spent cookie revokes the family: the browser's own session ends too
        async with httpx.AsyncClient(base_url=stack.api_url, cookies={COOKIE: first_cookie}) as thief:
            reused = await thief.post("/v1/auth/session/refresh")
            assert reused.status_code == 401
            assert reused.headers["content-type"] == "application/problem+json"
        assert (await browser.post("/v1/auth/session/refresh")).status_code == 401
        assert COOKIE not in browser.cookies  # the refusal cleared it

        await browser.post("/v1/auth/session", json={"email": email, "password": PASSWORD})
        assert (await browser.post("/v1/auth/session/logout")).status_code == 204
        assert COOKIE not in browser.cookies
        assert (await browser.post("/v1/auth/session/refresh")).status_code == 401


async def test_session_cookie_works_only_on_its_routes(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    email = await make_user(engine, tenant.id)
    async with httpx.AsyncClient(base_url=stack.api_url) as browser:
        opened = await browser.post("/v1/auth/session", json={"email": email, "password": PASSWORD})
        refresh_token = browser.cookies[COOKIE]
        # not a credential for the API itself, only a refresh token
        assert (await browser.get("/v1/me")).status_code == 401
        assert (await browser.get("/v1/me", headers={"Authorization": f"Bearer {refresh_token}"})).status_code == 401
        # the JSON refresh route takes the same token (one family, one rotation rule)
        pair = await browser.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
        assert pair.status_code == 200
        assert (await browser.post("/v1/auth/session/refresh")).status_code == 401, "spent by the JSON route"
        assert opened.status_code == 200


async def test_session_refusals(stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine) -> None:
    email = await make_user(engine, tenant.id)
    async with httpx.AsyncClient(base_url=stack.api_url) as browser:
        wrong = await browser.post("/v1/auth/session", json={"email": email, "password": "not it"})
        assert wrong.status_code == 401
        assert COOKIE not in browser.cookies
        assert (await browser.post("/v1/auth/session/refresh")).json()["detail"] == "no session: sign in"
    for forged_value in ("rt_forged", "rt_" + "x" * 400):
        async with httpx.AsyncClient(base_url=stack.api_url, cookies={COOKIE: forged_value}) as forger:
            assert (await forger.post("/v1/auth/session/refresh")).status_code == 401
    async with httpx.AsyncClient(base_url=stack.api_url) as browser:
        assert (await browser.post("/v1/auth/session/logout")).status_code == 204  # nothing to end: still 204
        bad = await browser.post("/v1/auth/session", json={"email": "no-at-sign", "password": "x"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "email"
