"""Tenant secrets: encrypted at rest with the platform keyring, resolved by reference.

The ciphertext is bound to ``tenant_id:name`` (AES-GCM associated data), so a
row copied to another tenant or name does not decrypt.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.crypto import Keyring
from core.db.engine import make_sessionmaker
from core.db.models import Secret, utcnow
from core.ids import new_id

_secret = Secret.__table__  # type: ignore[attr-defined]


def _aad(tenant_id: str, name: str) -> bytes:
    return f"{tenant_id}:{name}".encode()


async def missing_secrets(session: AsyncSession, tenant_id: str, names: Collection[str]) -> set[str]:
    """Those of ``names`` the tenant has no secret under (another tenant's secrets do not count)."""
    if not names:
        return set()
    query = select(Secret.name).where(Secret.tenant_id == tenant_id, col(Secret.name).in_(list(names)))
    return set(names) - set((await session.exec(query)).all())


class SecretStore:
    """Create, list, resolve and delete one tenant's secrets."""

    def __init__(self, session: AsyncSession, tenant_id: str, keyring: Keyring):
        self._session = session
        self._tenant_id = tenant_id
        self._keyring = keyring

    async def put(self, name: str, value: str) -> Secret:
        """Create or replace the secret ``name`` (caller commits)."""
        ciphertext = self._keyring.encrypt(value.encode(), aad=_aad(self._tenant_id, name))
        now = utcnow()
        statement = insert(_secret).values(
            id=new_id("sec"),
            tenant_id=self._tenant_id,
            name=name,
            ciphertext=ciphertext,
            created_at=now,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["tenant_id", "name"], set_={"ciphertext": ciphertext, "updated_at": now}
        )
        await self._session.exec(statement)
        row = await self.get(name)
        assert row is not None
        return row

    async def get(self, name: str) -> Secret | None:
        """The secret row (still encrypted)."""
        result = await self._session.exec(
            select(Secret).where(Secret.tenant_id == self._tenant_id, Secret.name == name)
        )
        return result.first()

    async def list(self, *, limit: int, after: str | None = None) -> Sequence[Secret]:
        """At most ``limit`` secrets of the tenant, by name, after the name ``after``."""
        query = select(Secret).where(Secret.tenant_id == self._tenant_id)
        if after is not None:
            query = query.where(col(Secret.name) > after)
        return (await self._session.exec(query.order_by(col(Secret.name)).limit(limit))).all()

    async def reveal(self, name: str) -> str | None:
        """The plaintext of ``name`` (for workers resolving a reference), or ``None``."""
        row = await self.get(name)
        if row is None:
            return None
        return self._keyring.decrypt(row.ciphertext, aad=_aad(self._tenant_id, name)).decode()

    async def delete(self, name: str) -> bool:
        """Delete ``name``; whether it existed (caller commits)."""
        result = await self._session.exec(
            delete(Secret).where(col(Secret.tenant_id) == self._tenant_id, col(Secret.name) == name)
        )
        return bool(result.rowcount)


class SecretReader:
    """Resolves secrets by reference for workers (a session per lookup)."""

    def __init__(self, engine: AsyncEngine, keyring: Keyring):
        self._sessions = make_sessionmaker(engine)
        self._keyring = keyring

    async def reveal(self, tenant_id: str, name: str) -> str | None:
        """The plaintext of the tenant's secret ``name``, or ``None``."""
        async with self._sessions() as session:
            return await SecretStore(session, tenant_id, self._keyring).reveal(name)
