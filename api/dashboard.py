"""The dashboard: the static export of ``dashboard/`` (Next.js), served at ``/`` after every API route.

Routes of the API come first: :class:`DashboardFiles` is the router's default, reached only by
a request that no route matched, not even by its path alone (so a wrong method on an API path
still answers 405 with ``Allow``). It serves GET and HEAD for paths outside the API's own
prefixes: ``/runs`` from ``runs.html`` or ``runs/index.html`` (no redirect: a ``Location``
would be built from the caller's ``Host``); hashed assets under ``/_next/static`` cached for a
year, as the build's gzip copies to browsers that accept gzip; pages revalidated on every load
and sent with a strict Content-Security-Policy. An unknown page asked for by a browser gets the
export's ``404.html``; everything else answers the API's own 404 problem, so ``/v1/…`` typos
and other methods keep their problem+json answers. The folder is looked up per request: a
build made while the API runs is served at once, and a missing build is one 404 problem naming
how to build it.
"""

from __future__ import annotations

import os
from mimetypes import guess_type
from pathlib import Path

import structlog
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

log = structlog.get_logger(__name__)
SOURCE_OUT = Path(__file__).resolve().parent.parent / "dashboard" / "out"
"""Where ``make dashboard`` puts the export in a source checkout."""
API_PREFIXES = ("v1/", "codec/", "docs/", ".well-known/")
API_PATHS = frozenset({"v1", "codec", "docs", "redoc", "openapi.json", "healthz", "readyz", "metrics"})
IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # the export inlines its bootstrap scripts
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class DashboardFiles(StaticFiles):
    """Static files of the export; see the module docstring."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)
        self.root = directory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a file of the export, or raise the API's 404."""
        path = self.get_path(scope).strip("/")
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or _is_api(path):
            raise HTTPException(404, "Not Found")
        found = self._find(path)
        if found is None:
            if not (self.root / "index.html").is_file():
                raise HTTPException(404, f"the dashboard is not built ({self.root}): run `make dashboard`")
            page = self._find("404")
            if page is None or "text/html" not in Headers(scope=scope).get("accept", ""):
                raise HTTPException(404, "Not Found")
            await self._response(page, status_code=404)(scope, receive, send)
            return
        await self._response(found, gzip_ok=_accepts_gzip(scope))(scope, receive, send)

    def _find(self, path: str) -> Path | None:
        """The file of ``path``: itself, ``path.html`` or ``path/index.html``, inside the export only."""
        candidates = [path, f"{path}.html", f"{path}/index.html"] if path else ["index.html"]
        for candidate in candidates:
            full, stat_result = self.lookup_path(candidate)
            if stat_result is not None and os.path.isfile(full):
                return Path(full)
        return None

    def _response(self, file: Path, status_code: int = 200, *, gzip_ok: bool = False) -> Response:
        headers = dict(PAGE_HEADERS) if file.suffix in (".html", ".txt") else {}
        if file.is_relative_to(self.root / "_next" / "static"):
            headers["Cache-Control"] = IMMUTABLE
            headers["Vary"] = "Accept-Encoding"
            packed = file.with_name(f"{file.name}.gz")
            if gzip_ok and packed.is_file():  # the build's gzip copy, sent as the asset itself
                media_type = guess_type(file.name)[0] or "application/octet-stream"
                headers["Content-Encoding"] = "gzip"
                return FileResponse(packed, status_code=status_code, headers=headers, media_type=media_type)
        return FileResponse(file, status_code=status_code, headers=headers)


def _accepts_gzip(scope: Scope) -> bool:
    return "gzip" in Headers(scope=scope).get("accept-encoding", "").lower()


def _is_api(path: str) -> bool:
    return path in API_PATHS or path.startswith(API_PREFIXES)


def export_dir(directory: Path | None) -> Path:
    """The folder of the export: ``AIMPACT_DASHBOARD_DIR``, else the source tree's ``dashboard/out``."""
    return (directory or SOURCE_OUT).resolve()


def built(directory: Path | None) -> bool:
    """Whether there is an export to serve."""
    return (export_dir(directory) / "index.html").is_file()


def dashboard_files(directory: Path | None) -> DashboardFiles:
    """The dashboard's static files, logging whether a build is there to serve."""
    root = export_dir(directory)
    if built(root):
        log.info("dashboard served at /", directory=str(root))
    else:
        log.warning(
            "dashboard not built: / answers 404 until it is (run `make dashboard`, or set AIMPACT_DASHBOARD_DIR)",
            directory=str(root),
        )
    return DashboardFiles(root)
