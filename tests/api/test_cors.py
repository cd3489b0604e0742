"""Browser clients: ``AIMPACT_CORS_ORIGINS`` admits listed origins only; none by default; ``*`` refused in prod."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.api.conftest import BROWSER_ORIGIN
from tests.conftest import TenantCtx
from workers.embedded.stack import StackProcess

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
}


async def test_listed_origins_get_cors_headers_and_others_none(
    second_api: str, stack: StackProcess, tenant: TenantCtx
) -> None:
    async with httpx.AsyncClient(base_url=second_api) as browser:
        allowed = await browser.options("/v1/agents/x/runs", headers=PREFLIGHT | {"Origin": BROWSER_ORIGIN})
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == BROWSER_ORIGIN
        assert "access-control-allow-credentials" not in allowed.headers  # off unless set
        sent = {h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key", "last-event-id"} <= sent
        assert "POST" in allowed.headers["access-control-allow-methods"]

        simple = await browser.get("/v1/agents", headers={"Origin": BROWSER_ORIGIN, **_auth(tenant)})
        assert simple.status_code == 200
        assert simple.headers["access-control-allow-origin"] == BROWSER_ORIGIN
        assert "retry-after" in simple.headers["access-control-expose-headers"].lower()

        other = "https://evil.example.com"
        refused = await browser.options("/v1/agents/x/runs", headers=PREFLIGHT | {"Origin": other})
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        unlisted = await browser.get("/v1/agents", headers={"Origin": other, **_auth(tenant)})
        assert "access-control-allow-origin" not in unlisted.headers

        codec = await browser.options("/codec/decode", headers=PREFLIGHT | {"Origin": BROWSER_ORIGIN})
        assert "access-control-allow-origin" not in codec.headers  # the codec admits the Temporal UI only

    async with httpx.AsyncClient(base_url=stack.api_url) as browser:  # the default: no origin is listed
        simple = await browser.get("/v1/agents", headers={"Origin": BROWSER_ORIGIN, **_auth(tenant)})
        assert simple.status_code == 200
        assert "access-control-allow-origin" not in simple.headers
        ui_origin = f"http://127.0.0.1:{stack.ports['TEMPORAL_UI']}"
        ui = await browser.options("/v1/agents", headers=PREFLIGHT | {"Origin": ui_origin})
        assert "access-control-allow-origin" not in ui.headers  # the Temporal UI's origin reaches /codec only


def _auth(tenant: TenantCtx) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.key}"}


def test_any_origin_is_refused_in_prod_naming_the_variable() -> None:
    env = dict(os.environ, AIMPACT_ENV="prod", AIMPACT_CORS_ORIGINS="*")
    result = subprocess.run([sys.executable, "-m", "cli", "migrate"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "AIMPACT_CORS_ORIGINS" in result.stdout
    assert "list the origins" in result.stdout
    env = dict(os.environ, AIMPACT_CORS_ORIGINS="*", AIMPACT_CORS_ALLOW_CREDENTIALS="true")
    result = subprocess.run([sys.executable, "-m", "cli", "migrate"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "AIMPACT_CORS_ALLOW_CREDENTIALS" in result.stdout
