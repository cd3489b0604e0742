"""Stream slots per tenant and per process: refused beyond either limit, freed once per stream."""

from __future__ import annotations

import pytest

from api.streams import StreamLimitError, StreamLimits


def test_the_tenant_limit_refuses_only_that_tenant() -> None:
    limits = StreamLimits(per_tenant=2, per_process=10)
    first = limits.acquire("t1")
    limits.acquire("t1")
    with pytest.raises(StreamLimitError, match="per tenant"):
        limits.acquire("t1")
    limits.acquire("t2")
    first.release()
    first.release()  # a second release frees nothing more
    limits.acquire("t1")
    with pytest.raises(StreamLimitError, match="per tenant"):
        limits.acquire("t1")


def test_the_process_limit_refuses_every_tenant_until_a_stream_ends() -> None:
    limits = StreamLimits(per_tenant=5, per_process=3)
    leases = [limits.acquire(tenant) for tenant in ("t1", "t2", "t3")]
    for tenant in ("t1", "t4"):
        with pytest.raises(StreamLimitError, match="maximum of 3"):
            limits.acquire(tenant)
    leases[1].release()
    limits.acquire("t4")
