"""Pagination of every list: ``?limit=`` (1..200), an opaque ``?cursor=``, ``{"items", "next_cursor"}``.

A cursor is unpadded base64url of the JSON array ``[list, key...]``: the name of the list
that issued it and the sort key of the last item of the page. Each list decodes only its
own cursors; anything else (garbage, another list's cursor, a tampered key) answers 422
naming ``cursor``, with no internal detail. Routes declare ``limit: Limit`` and
``after: Annotated[K | None, Depends(PAGER.after)]``, fetch ``limit + 1`` rows after the
key and answer with :meth:`Pager.page`.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query

from api.problem_types import ProblemType
from api.problems import ProblemError
from core.db.repos import Keyset
from core.validation import text_problem

MAX_LIMIT = 200
MAX_CURSOR_CHARS = 512
CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"
"""A cursor's alphabet (unpadded base64url); only cursors the list issued decode."""
_MAX_SEQ = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT}).")]
CursorParam = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_CHARS,
        description="`next_cursor` of the previous page, unchanged; omit for the first page.",
        json_schema_extra={"pattern": CURSOR_PATTERN},
    ),
]

K = TypeVar("K")
R = TypeVar("R")
KeyPart = str | int


def _invalid_cursor() -> ProblemError:
    message = "not a cursor of this list; pass next_cursor from the previous page unchanged"
    return ProblemError(
        422,
        f"invalid request — cursor: {message}",
        slug=ProblemType.VALIDATION_ERROR,
        errors=[{"field": "cursor", "message": message}],
    )


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value or text_problem(value):
        raise ValueError("not a storable, non-empty string")
    return value


class Pager(ABC, Generic[K]):
    """The cursor codec of one list, sorted by a key of type ``K``."""

    def __init__(self, scope: str, key: Callable[[Any], K]) -> None:
        """``scope`` names the list in its cursors; ``key`` reads the sort key of a row."""
        self.scope = scope
        self._key = key

    def encode(self, key: K) -> str:
        """The cursor pointing after ``key``."""
        raw = json.dumps([self.scope, *self._parts(key)], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str) -> K:
        """The key ``cursor`` points after; :class:`ProblemError` 422 unless this list issued it."""
        try:
            raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
            document = json.loads(raw)
            if not isinstance(document, list) or not document or document[0] != self.scope:
                raise ValueError("foreign cursor")
            return self._parse(document[1:])
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError):
            raise _invalid_cursor() from None

    async def after(self, cursor: CursorParam = None) -> K | None:
        """FastAPI dependency: the decoded ``cursor`` query parameter, ``None`` for the first page."""
        return self.decode(cursor) if cursor else None

    def page(self, rows: Sequence[R], limit: int) -> tuple[list[R], str | None]:
        """The first ``limit`` of ``rows`` (fetched as ``limit + 1``) and the cursor after them, if more remain."""
        if len(rows) <= limit:
            return list(rows), None
        return list(rows[:limit]), self.encode(self._key(rows[limit - 1]))

    @abstractmethod
    def _parts(self, key: K) -> list[KeyPart]: ...

    @abstractmethod
    def _parse(self, parts: list[Any]) -> K: ...


class NewestFirst(Pager[Keyset]):
    """Lists sorted by ``(created_at, id)``, newest first."""

    def __init__(self, scope: str) -> None:
        """Rows expose ``created_at`` and ``id``."""
        super().__init__(scope, lambda row: (row.created_at, row.id))

    def _parts(self, key: Keyset) -> list[KeyPart]:
        return [key[0].isoformat(), key[1]]

    def _parse(self, parts: list[Any]) -> Keyset:
        created, row_id = parts
        moment = datetime.fromisoformat(_text(created))
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment, _text(row_id)


class ByText(Pager[str]):
    """Lists sorted by a unique text key (an id or a name), ascending."""

    def _parts(self, key: str) -> list[KeyPart]:
        return [key]

    def _parse(self, parts: list[Any]) -> str:
        (value,) = parts
        return _text(value)


class BySeq(Pager[int]):
    """Lists sorted by a non-negative integer position, ascending."""

    def _parts(self, key: int) -> list[KeyPart]:
        return [key]

    def _parse(self, parts: list[Any]) -> int:
        (value,) = parts
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SEQ:
            raise ValueError("not a position")
        return value
