"""Classification of deterministic failures that retrying cannot fix.

An integrity or data error from PostgreSQL (a duplicate key, a value it refuses such as
NUL in text, a malformed statement) or a failed assertion fails the same way on every
attempt; retried by an unbounded policy it would leave a run ``running`` for ever.
``database_rejections`` turns them into a non-retryable ``ApplicationError`` of type
``DatabaseRejected`` whose message names the step, so the workflow records it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core import errors

P = ParamSpec("P")
R = TypeVar("R")

MAX_MESSAGE_CHARS = 300
DETERMINISTIC: tuple[type[BaseException], ...] = (IntegrityError, DataError, ProgrammingError, AssertionError)


def _step_name(step: str | None) -> str:
    if step:
        return step
    try:
        return activity.info().activity_type
    except RuntimeError:  # outside an activity
        return "unknown step"


def rejection(exc: BaseException, step: str | None = None) -> ApplicationError:
    """The non-retryable ``DatabaseRejected`` error for ``exc``, naming ``step`` (default: the activity)."""
    cause = getattr(exc, "orig", None) or exc  # the driver's error, without SQLAlchemy's statement and parameters
    first_line = (str(cause).strip().splitlines() or [""])[0]  # DETAIL lines may quote row values
    code = getattr(cause, "sqlstate", None)
    detail = f"{type(cause).__name__}{f' [{code}]' if code else ''}: {first_line}"[:MAX_MESSAGE_CHARS]
    return ApplicationError(
        f"step {_step_name(step)} was rejected by the database: {detail}",
        type=errors.DATABASE_REJECTED,
        non_retryable=True,
    )


@contextmanager
def database_rejections(step: str | None = None) -> Iterator[None]:
    """Raise deterministic database errors and failed assertions in the body as ``rejection``."""
    try:
        yield
    except DETERMINISTIC as exc:
        raise rejection(exc, step) from exc


def classify_database_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate an activity (below ``@activity.defn``) so its deterministic errors are non-retryable.

    The message names the activity and, when its input has one, the run's ``step_id``.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ids = (getattr(a, "step_id", None) for a in args)
        step_id = next((i for i in ids if isinstance(i, str)), None)
        with database_rejections(f"{_step_name(None)} ({step_id})" if step_id else None):
            return await fn(*args, **kwargs)

    return wrapper
