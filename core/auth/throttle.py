"""Login throttling per account and per client IP (Redis, shared by API replicas)."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis


class LoginThrottle:
    """Counts failed logins in a window; blocks when either counter is over its limit."""

    def __init__(self, redis: Redis, *, max_per_account: int, max_per_ip: int, window_s: int):
        self._redis = redis
        self._max_account = max_per_account
        self._max_ip = max_per_ip
        self._window_s = window_s

    @staticmethod
    def _keys(email: str, ip: str) -> tuple[str, str]:
        account = hashlib.sha256(email.lower().encode()).hexdigest()[:32]
        return f"aimpact:login:acct:{account}", f"aimpact:login:ip:{ip}"

    async def retry_after(self, email: str, ip: str) -> int | None:
        """Seconds to wait if this account or IP is blocked, else ``None``."""
        account_key, ip_key = self._keys(email, ip)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(account_key)
            pipe.ttl(account_key)
            pipe.get(ip_key)
            pipe.ttl(ip_key)
            account, account_ttl, by_ip, ip_ttl = await pipe.execute()
        waits = []
        if account is not None and int(account) >= self._max_account:
            waits.append(max(int(account_ttl), 1))
        if by_ip is not None and int(by_ip) >= self._max_ip:
            waits.append(max(int(ip_ttl), 1))
        return max(waits) if waits else None

    async def failed(self, email: str, ip: str) -> None:
        """Count a failed attempt."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in self._keys(email, ip):
                pipe.incr(key)
                pipe.expire(key, self._window_s, nx=True)
            await pipe.execute()

    async def succeeded(self, email: str) -> None:
        """Clear the account's failures."""
        await self._redis.delete(self._keys(email, "-")[0])
