"""The dashboard's export is served at ``/`` after the API's routes, which keep their own answers."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.dashboard import CONTENT_SECURITY_POLICY, IMMUTABLE, dashboard_files
from api.problems import install_problem_handlers


def _app(out: Path) -> TestClient:
    app = FastAPI(redirect_slashes=False)  # as api.app builds it
    install_problem_handlers(app)

    @app.get("/v1/things")
    async def things() -> dict[str, str]:
        return {"ok": "yes"}

    app.router.default = dashboard_files(out)
    return TestClient(app)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    (tmp_path / "_next" / "static" / "chunks").mkdir(parents=True)
    (tmp_path / "_next" / "static" / "chunks" / "app.js").write_text("console.log(1)")
    (tmp_path / "_next" / "static" / "chunks" / "app.js.gz").write_bytes(gzip.compress(b"console.log(1)"))
    (tmp_path / "index.html").write_text("<html>home</html>")
    (tmp_path / "runs.html").write_text("<html>runs</html>")
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "index.html").write_text("<html>settings</html>")
    (tmp_path / "404.html").write_text("<html>no such page</html>")
    return tmp_path


def test_pages_and_assets(export: Path) -> None:
    client = _app(export)
    for path, text in (("/", "home"), ("/runs", "runs"), ("/runs/", "runs"), ("/settings", "settings")):
        page = client.get(path, follow_redirects=False)
        assert (page.status_code, text in page.text) == (200, True), path  # no redirect, whatever the slash
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["x-content-type-options"] == "nosniff"
    asset = client.get("/_next/static/chunks/app.js", headers={"Accept-Encoding": "gzip"})
    assert (asset.status_code, asset.headers["cache-control"]) == (200, IMMUTABLE)
    assert (asset.headers["content-encoding"], asset.headers["vary"]) == ("gzip", "Accept-Encoding")
    assert asset.headers["content-type"].startswith("text/javascript")
    assert asset.text == "console.log(1)"  # decoded by the client
    plain = client.get("/_next/static/chunks/app.js", headers={"Accept-Encoding": "identity"})
    assert ("content-encoding" not in plain.headers, plain.text) == (True, "console.log(1)")
    assert client.head("/runs").status_code == 200


def test_the_api_keeps_its_answers(export: Path) -> None:
    client = _app(export)
    assert client.get("/v1/things").json() == {"ok": "yes"}
    wrong_method = client.put("/v1/things")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "GET")
    for method, path in (("GET", "/v1/nothing"), ("GET", "/v1/things/"), ("POST", "/runs"), ("GET", "/docs/x")):
        response = client.request(method, path, headers={"Accept": "text/html"})
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/problem+json", (method, path)


def test_unknown_pages_and_escapes(export: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text("not for the web")
    client = _app(export)
    browser = client.get("/no/such/page", headers={"Accept": "text/html,*/*"})
    assert (browser.status_code, "no such page" in browser.text) == (404, True)
    assert client.get("/no/such/page").headers["content-type"] == "application/problem+json"
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", f"/..{secret}", "/_next/../../secret.txt"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "not for the web" not in response.text, path


def test_a_missing_build_says_how_to_build_it(tmp_path: Path) -> None:
    client = _app(tmp_path / "out")
    response = client.get("/")
    assert response.status_code == 404
    assert "make dashboard" in response.json()["detail"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "index.html").write_text("built later")
    assert client.get("/").text == "built later"  # looked up per request: no restart needed
