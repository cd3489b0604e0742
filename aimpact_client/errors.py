"""The client's errors: one for every problem the API answers, one for configuration that cannot work."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ConfigError(Exception):
    """No usable URL or credentials, or a config file that cannot be used; the message says why."""


class ApiError(Exception):
    """An answer outside 2xx, with the RFC 9457 problem document it carried.

    ``status``, ``type``, ``title``, ``detail`` and ``errors`` (``[{field, message}]``)
    come from the document; an answer that is not problem+json still gets a status, a
    title and its text as ``detail``.
    """

    def __init__(self, status: int, problem: dict[str, Any], *, headers: httpx.Headers | None = None):
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type", "about:blank"))
        self.title: str = str(problem.get("title", ""))
        self.detail: str = str(problem.get("detail", ""))
        raw_errors = problem.get("errors")
        self.errors: list[dict[str, str]] = list(raw_errors) if isinstance(raw_errors, list) else []
        self.headers = headers or httpx.Headers()
        super().__init__(f"{status} {self.title}: {self.detail}" if self.detail else f"{status} {self.title}")

    @property
    def retry_after(self) -> float | None:
        """Seconds from ``Retry-After`` (429, 503), when the answer had one."""
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error of a read non-2xx response."""
        problem: dict[str, Any] | None = None
        try:
            body = response.json()
            problem = body if isinstance(body, dict) else None
        except ValueError:
            problem = None
        if problem is None:
            problem = {"title": response.reason_phrase, "status": response.status_code, "detail": response.text[:2000]}
        problem.setdefault("status", response.status_code)
        problem.setdefault("title", response.reason_phrase)
        return cls(response.status_code, problem, headers=response.headers)
