"""Limits on the SSE streams one API process holds open, per tenant and in all."""

from __future__ import annotations

from collections import Counter


class StreamLimitError(Exception):
    """No stream slot is free for this tenant (or this process)."""


class StreamLease:
    """One open stream's slot; release it exactly once when the stream ends."""

    def __init__(self, limits: StreamLimits, tenant_id: str):
        self._limits = limits
        self.tenant_id = tenant_id
        self._released = False

    def release(self) -> None:
        """Free the slot (idempotent)."""
        if not self._released:
            self._released = True
            self._limits._release(self.tenant_id)


class StreamLimits:
    """Counts open streams of this process; refuses new ones beyond either limit."""

    def __init__(self, *, per_tenant: int, per_process: int):
        self.per_tenant = per_tenant
        self.per_process = per_process
        self._open: Counter[str] = Counter()
        self._total = 0

    def acquire(self, tenant_id: str) -> StreamLease:
        """A slot for one more stream of ``tenant_id``, or ``StreamLimitError``."""
        if self._open[tenant_id] >= self.per_tenant:
            raise StreamLimitError(f"at most {self.per_tenant} open event streams per tenant on this server")
        if self._total >= self.per_process:
            raise StreamLimitError(f"this server holds its maximum of {self.per_process} open event streams")
        self._open[tenant_id] += 1
        self._total += 1
        return StreamLease(self, tenant_id)

    def _release(self, tenant_id: str) -> None:
        self._open[tenant_id] -= 1
        if self._open[tenant_id] <= 0:
            del self._open[tenant_id]
        self._total -= 1
