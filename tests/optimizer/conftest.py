"""Fixtures of the optimizer's tests: the simulated world served over HTTP (each module defines ``world``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulated.scripted_server import ScriptedServer
from simulated.world import SimWorld


@pytest.fixture
def server(world: SimWorld) -> Iterator[ScriptedServer]:
    """The module's ``world`` answering Chat Completions on a loopback port."""
    with world.serve() as running:
        yield running
