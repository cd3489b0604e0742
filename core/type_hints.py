"""Memoized type hints for the Temporal payload converter.

``temporalio``'s JSON converter calls ``typing.get_type_hints`` on every dataclass it
decodes, for every payload: with postponed annotations that evaluates each field's string
annotation again (about 8% of an agents worker's CPU per run). A dataclass's hints do not
change, so this memoizes them for the converter's module only.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import temporalio.converter._payload_converter as _payload_converter

MAX_ENTRIES = 1024
"""Hints kept; the workflow sandbox re-imports workflow modules, so their classes are new per run."""

_hints: dict[Any, dict[str, Any]] = {}


def cached_type_hints(
    obj: Any,
    globalns: dict[str, Any] | None = None,
    localns: Mapping[str, Any] | None = None,
    include_extras: bool = False,
) -> dict[str, Any]:
    """``typing.get_type_hints(obj)``, computed once per object (the caller must not mutate the result).

    Calls with any other argument are passed on uncached.
    """
    if globalns is not None or localns is not None or include_extras:
        return typing.get_type_hints(obj, globalns, localns, include_extras)
    try:
        return _hints[obj]
    except KeyError:
        pass
    except TypeError:  # unhashable: nothing to key the cache on
        return typing.get_type_hints(obj)
    hints = typing.get_type_hints(obj)
    if len(_hints) >= MAX_ENTRIES:
        _hints.clear()
    _hints[obj] = hints
    return hints


def memoize_converter_type_hints() -> None:
    """Make the payload converter use ``cached_type_hints`` (idempotent; the process's converters all share it).

    Raises:
        RuntimeError: The installed ``temporalio`` no longer looks hints up where this expects.
    """
    current = getattr(_payload_converter, "get_type_hints", None)
    if current is cached_type_hints:
        return
    if current is not typing.get_type_hints:
        raise RuntimeError("temporalio.converter no longer calls typing.get_type_hints; revisit core.type_hints")
    _payload_converter.get_type_hints = cached_type_hints  # type: ignore[attr-defined]
