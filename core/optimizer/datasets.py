"""Dataset content: canonical examples, their stable ids, the dataset hash and the train/validation/test split.

Everything here is a pure function of the examples, so the same content always gives the
same ids, hash and split:

- an example's id is ``ex_`` + the first 32 hex digits of the SHA-256 of the canonical JSON
  of what an evaluation sees (``input``, ``expected``, ``rubric``); examples with the same id
  are kept once (the first);
- the dataset hash is the SHA-256 of the canonical JSON of the full examples, in order;
- an example's split comes from the SHA-256 of ``SPLIT_SALT`` + its id: a bucket in 0..99,
  below 60 ``train``, below 80 ``validation``, else ``test``. With 3 or more examples no split
  is left empty: an empty split takes, from the largest split, the example whose bucket
  hash is highest (a rule over the content only, so it is deterministic too).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

SPLIT_SALT = "aimpact-dataset-split-v1"
SPLIT_SHARES = (60, 20, 20)
"""Percent of examples in train, validation and test."""
MIN_EXAMPLES = 3
"""The fewest examples a dataset may have: one per split."""


class Split(StrEnum):
    """Which part of a dataset an example belongs to."""

    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


class Source(StrEnum):
    """Where a dataset's examples came from."""

    RUNS = "runs"
    EXAMPLES = "examples"
    MIXED = "mixed"


@dataclass(frozen=True, kw_only=True)
class Example:
    """One example before it is stored: what to ask, what to expect, and where it came from."""

    input: str
    expected: str | None = None
    rubric: str | None = None
    output: str | None = None
    """The recorded answer of the run it came from."""
    source_run_id: str | None = None
    feedback_score: float | None = None
    """The mean feedback score of that run."""


@dataclass(frozen=True, kw_only=True)
class PlacedExample:
    """An example with its stable id, its position in the dataset and its split."""

    example: Example
    id: str
    position: int
    split: Split


@dataclass(frozen=True, kw_only=True)
class BuiltDataset:
    """The content of a dataset: its examples placed, its hash and its split counts."""

    examples: list[PlacedExample]
    hash: str
    splits: dict[Split, int]


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text as is: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def example_id(example: Example) -> str:
    """The stable id of what an evaluation sees of ``example``."""
    seen = {"input": example.input, "expected": example.expected, "rubric": example.rubric}
    return "ex_" + _sha256(canonical_json(seen))[:32]


def dataset_hash(examples: Iterable[Example]) -> str:
    """SHA-256 of the canonical JSON of the examples, in order."""
    return _sha256(canonical_json([asdict(e) for e in examples]))


def _bucket_key(identifier: str) -> int:
    return int(_sha256(SPLIT_SALT + identifier), 16)


def split_of(identifier: str) -> Split:
    """The split an example id falls in by hash alone."""
    bucket = _bucket_key(identifier) % 100
    train, validation, _ = SPLIT_SHARES
    if bucket < train:
        return Split.TRAIN
    return Split.VALIDATION if bucket < train + validation else Split.TEST


def assign_splits(ids: Sequence[str]) -> list[Split]:
    """The split of each id (distinct ids); with ``MIN_EXAMPLES`` or more, every split has one."""
    splits = [split_of(i) for i in ids]
    if len(ids) < MIN_EXAMPLES:
        return splits
    for wanted in Split:
        if wanted in splits:
            continue
        counts = {s: splits.count(s) for s in Split}
        donor = max(Split, key=lambda s: counts[s])  # ties: the first in Split's order
        moved = max((k for k, s in enumerate(splits) if s == donor), key=lambda k: _bucket_key(ids[k]))
        splits[moved] = wanted
    return splits


def unique(examples: Iterable[Example]) -> list[tuple[str, Example]]:
    """``(id, example)`` of each distinct example, the first of each id, in order."""
    seen: dict[str, Example] = {}
    for example in examples:
        seen.setdefault(example_id(example), example)
    return list(seen.items())


def build(examples: Iterable[Example]) -> BuiltDataset:
    """Ids, positions, splits and hash of the distinct ``examples``, in order."""
    distinct = unique(examples)
    splits = assign_splits([i for i, _ in distinct])
    placed = [
        PlacedExample(example=example, id=identifier, position=position, split=split)
        for position, ((identifier, example), split) in enumerate(zip(distinct, splits, strict=True))
    ]
    return BuiltDataset(
        examples=placed,
        hash=dataset_hash(e for _, e in distinct),
        splits={s: splits.count(s) for s in Split},
    )


def source_of(*, uploaded: int, from_runs: int) -> Source:
    """``runs``, ``examples`` or ``mixed`` from how many examples each source gave."""
    if uploaded and from_runs:
        return Source.MIXED
    return Source.RUNS if from_runs else Source.EXAMPLES
