"""Opaque refresh tokens: stored hashed, rotated on every use, revoked as a family on reuse."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.auth.jwt_keys import TokenError
from core.db.models import RefreshToken, User, utcnow
from core.ids import new_id

PREFIX = "rt_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokens:
    """Issue, rotate and revoke refresh tokens."""

    def __init__(self, *, ttl_s: int):
        self._ttl = timedelta(seconds=ttl_s)

    async def issue(self, session: AsyncSession, user: User, *, family_id: str | None = None) -> str:
        """A new token for ``user`` (a new family unless ``family_id``); commits."""
        token = PREFIX + secrets.token_urlsafe(32)
        session.add(
            RefreshToken(
                id=new_id("rtk"),
                user_id=user.id,
                tenant_id=user.tenant_id,
                family_id=family_id or new_id("fam"),
                token_hash=_hash(token),
                expires_at=utcnow() + self._ttl,
            )
        )
        await session.commit()
        return token

    async def rotate(self, session: AsyncSession, token: str) -> tuple[User, str]:
        """Spend ``token`` and return its user and a successor in the same family.

        Presenting a token that was already spent revokes its whole family
        (someone else holds a copy) and fails.
        """
        row = await self._find(session, token)
        if row is None:
            raise TokenError("unknown refresh token")
        if row.revoked_at is not None:
            raise TokenError("revoked refresh token")
        if row.used_at is not None:
            await self.revoke_family(session, row.family_id)
            raise TokenError("refresh token reused; family revoked")
        if row.expires_at < utcnow():
            raise TokenError("expired refresh token")
        spent = await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.id) == row.id, col(RefreshToken.used_at).is_(None))
            .values(used_at=utcnow())
        )
        if spent.rowcount != 1:  # a concurrent refresh won: treat as reuse
            await self.revoke_family(session, row.family_id)
            raise TokenError("refresh token reused; family revoked")
        user = await session.get(User, row.user_id)
        if user is None:
            raise TokenError("user no longer exists")
        return user, await self.issue(session, user, family_id=row.family_id)

    async def revoke(self, session: AsyncSession, token: str) -> None:
        """Logout: revoke the token's family (unknown tokens are ignored)."""
        row = await self._find(session, token)
        if row is not None:
            await self.revoke_family(session, row.family_id)

    async def revoke_family(self, session: AsyncSession, family_id: str) -> None:
        """Revoke every token of a family; commits."""
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )
        await session.commit()

    async def revoke_user(self, session: AsyncSession, user_id: str) -> None:
        """Revoke every token of a user (role change, deletion); caller commits."""
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )

    async def forget_user(self, session: AsyncSession, user_id: str) -> None:
        """Delete every token of a user that is being deleted; caller commits."""
        await session.exec(delete(RefreshToken).where(col(RefreshToken.user_id) == user_id))

    async def _find(self, session: AsyncSession, token: str) -> RefreshToken | None:
        if not token.startswith(PREFIX):
            return None
        result = await session.exec(select(RefreshToken).where(RefreshToken.token_hash == _hash(token)))
        return result.first()
