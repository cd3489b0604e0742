"""A cheap, deterministic token estimate used where no tokenizer is available."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Number of word and punctuation tokens in ``text``."""
    return len(_TOKEN.findall(text))
