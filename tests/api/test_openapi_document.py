"""The served OpenAPI document is complete and the API explorer works offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from api.routes.auth import PUBLIC_ROUTES
from tests.api.routes_table import UNAUTHENTICATED
from tests.conftest import TenantCtx
from workers.embedded.stack import StackProcess

PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}
PUBLIC = {(method.lower(), path) for method, path in PUBLIC_ROUTES} | {("get", path) for path in UNAUTHENTICATED}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def _document(stack: StackProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


async def test_every_operation_is_documented(stack: StackProcess) -> None:
    document = await _document(stack)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    gaps: list[str] = []
    for method, path, operation in _operations(document):
        label = f"{method.upper()} {path}"
        responses = operation["responses"]
        if not operation.get("summary") or operation["summary"] == operation["operationId"]:
            gaps.append(f"{label}: no summary")
        success = [(status, r) for status, r in responses.items() if status.startswith("2")]
        if not success:
            gaps.append(f"{label}: no 2xx response")
        for status, response in success:
            content = response.get("content", {})
            if status != "204" and not any(
                "schema" in media and (name != "application/json" or media["schema"]) for name, media in content.items()
            ):
                gaps.append(f"{label}: {status} has no schema")
        for status, response in responses.items():
            readiness = (path, status) == ("/readyz", "503")  # readiness answers its checks, not a problem
            problem = response.get("content", {}).get("application/problem+json")
            if (status == "default" or status[0] in "45") and not readiness and problem != PROBLEM:
                gaps.append(f"{label}: {status} is not a problem+json response")
        protected = (method, path) not in PUBLIC
        if protected and not operation.get("security"):
            gaps.append(f"{label}: no security declared")
        if not protected and operation.get("security"):
            gaps.append(f"{label}: a public operation declares security")
        if protected and not {"401", "429"} <= responses.keys():
            gaps.append(f"{label}: no 401/429 problems")
        if "{" in path and "404" not in responses:
            gaps.append(f"{label}: a path id without a 404 problem")
        if (operation.get("parameters") or operation.get("requestBody")) and "422" not in responses:
            gaps.append(f"{label}: input without a 422 problem")
    assert gaps == []
    names = document["components"]["schemas"]
    assert [name for name in names if "__" in name or "." in name] == []
    assert "HTTPValidationError" not in names


async def test_method_not_allowed_lists_the_documented_methods(stack: StackProcess, tenant: TenantCtx) -> None:
    document = await _document(stack)
    mismatched = []
    for path, operations in document["paths"].items():
        url = re.sub(r"\{\w+\}", "x_missing", path)
        response = await tenant.http.request("PUT", url)
        if "put" not in operations and (
            response.status_code != 405
            or response.headers.get("allow") != ", ".join(sorted(m.upper() for m in operations))
        ):
            mismatched.append(f"PUT {path}: {response.status_code} Allow: {response.headers.get('allow')}")
    assert mismatched == []


async def test_main_request_bodies_have_valid_examples(stack: StackProcess) -> None:
    document = await _document(stack)
    for method, path in [
        ("post", "/v1/agents"),
        ("post", "/v1/agents/{agent_id}/runs"),
        ("post", "/v1/tools"),
        ("post", "/v1/webhooks"),
        ("post", "/v1/secrets"),
        ("post", "/v1/users"),
        ("post", "/v1/api-keys"),
        ("post", "/v1/auth/token"),
    ]:
        media = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        assert media.get("example"), f"{method.upper()} {path}"


def _asset_urls(html: str, base: str) -> list[str]:
    found = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*'([^']+)'""", html)
    return [urljoin(base, a or b) for a, b in found]


async def test_docs_assets_load_from_the_api(stack: StackProcess) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        for page in ("/docs", "/redoc"):
            response = await client.get(page)
            assert response.status_code == 200
            urls = _asset_urls(response.text, f"{stack.api_url}{page}")
            assert any(url.endswith(".js") for url in urls), urls
            for url in urls:
                assert urlsplit(url).netloc == urlsplit(stack.api_url).netloc, url
                assert (await client.get(url)).status_code == 200, url


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package chromium)")
def test_swagger_ui_renders_in_a_browser(stack: StackProcess, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"]
    dom = subprocess.run(
        [*command, "--dump-dom", f"{stack.api_url}/docs"], capture_output=True, text=True, timeout=120
    ).stdout
    assert 'class="btn authorize' in dom  # the bearer scheme is declared: "Authorize" is offered
    assert dom.count('class="opblock ') >= 50, dom[-2000:]  # every operation is rendered
    shot = tmp_path / "docs.png"
    subprocess.run(
        [*command, f"--screenshot={shot}", "--window-size=1280,900", f"{stack.api_url}/docs"],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
