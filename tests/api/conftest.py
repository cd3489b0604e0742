"""Fixtures of the API tests beyond the session stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api_process import api_process
from workers.embedded.stack import StackProcess

BROWSER_ORIGIN = "https://app.example.com"
"""The browser origin ``second_api`` admits (``AIMPACT_CORS_ORIGINS``)."""


@pytest.fixture(scope="session")
def second_api(stack: StackProcess) -> Iterator[str]:
    """Base URL of a second API process on the stack's services, admitting ``BROWSER_ORIGIN``."""
    with api_process(stack, AIMPACT_CORS_ORIGINS=BROWSER_ORIGIN) as url:
        yield url
