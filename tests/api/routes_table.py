"""The app's route table with each route's declared permission (read from its dependencies)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from api.routes.auth import PUBLIC_ROUTES

UNAUTHENTICATED = {"/healthz", "/readyz", "/metrics"}


@dataclass(frozen=True)
class RouteInfo:
    """One method + path of the API and the permission it declares."""

    method: str
    path: str
    permission: str | None

    def url(self, **ids: str) -> str:
        """The path with its parameters filled from ``ids`` (``x_missing`` for the rest)."""
        return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x_missing"), self.path)


def _permission(dependant: Dependant) -> str | None:
    for dependency in dependant.dependencies:
        found = getattr(dependency.call, "permission", None) or _permission(dependency)
        if found:
            return str(found)
    return None


def api_routes() -> list[RouteInfo]:
    """Every method + path the app serves, with its permission (``None`` when public)."""
    routes = []
    for context in iter_route_contexts(create_app().routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None:
            continue
        for method in sorted((context.methods or set()) - {"HEAD"}):
            routes.append(RouteInfo(method, context.path, _permission(route.dependant)))
    assert routes, "the route table is empty"
    return routes


def is_public(route: RouteInfo) -> bool:
    """Routes that need no credentials."""
    return route.path in UNAUTHENTICATED or (route.method, route.path) in PUBLIC_ROUTES
