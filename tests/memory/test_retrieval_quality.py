"""Retrieval quality of the embedders on a small labelled set of paraphrased questions.

Thirty memories about one person and twenty-five questions that ask for one of
them in other words (few or no shared words). Each embedder ranks all memories
per question by cosine similarity; MRR and recall@5 are printed (``pytest -s``)
and recorded as test properties. MiniLM must beat lexical hashing, which by
design matches spellings, not meaning.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.db.models import EMBEDDING_DIM
from core.memory.embedders import Embedder, HashEmbedder, MiniLMEmbedder

MEMORIES: dict[str, str] = {
    "home": "My home is in Lisbon",
    "job": "I work as a nurse at the city hospital",
    "allergy": "I am allergic to nuts",
    "dog": "I have a golden retriever called Max",
    "cat": "We also adopted a grey kitten last spring",
    "sister": "My sister Marta is a lawyer in Madrid",
    "kids": "I have two daughters, aged six and nine",
    "partner": "My husband João teaches mathematics at a secondary school",
    "birthday": "I was born on the 14th of March",
    "car": "I drive an old red Volkswagen Golf",
    "guitar": "I play the guitar in a small jazz band on weekends",
    "running": "I run ten kilometres every morning before work",
    "vegetarian": "I stopped eating meat three years ago",
    "coffee": "I drink my espresso without sugar",
    "japan": "Last summer I spent two weeks in Kyoto and Tokyo",
    "spanish": "I am learning Spanish with an app every evening",
    "flying": "I am terrified of airplanes",
    "books": "Science fiction novels are my favourite reads",
    "football": "I support Benfica and never miss a match",
    "garden": "I grow tomatoes and basil on my balcony",
    "insomnia": "I usually go to bed after midnight because I struggle to fall asleep",
    "glasses": "I am short-sighted and wear contact lenses",
    "mother": "My mother lives alone in a village near Porto",
    "studies": "I studied biology at the University of Coimbra",
    "bike": "I commute by bicycle when it does not rain",
    "wedding": "We got married in 2015 on a beach in the Algarve",
    "cooking": "My signature dish is a slow-cooked fish stew",
    "piano": "As a child I took piano lessons for eight years",
    "savings": "I am saving money to buy a house in the countryside",
    "color": "Green is the colour I like the most",
}

QUERIES: list[tuple[str, str]] = [
    ("where do I live?", "home"),
    ("what do I do for a living?", "job"),
    ("can I eat peanut butter?", "allergy"),
    ("what kind of pet dog do I own?", "dog"),
    ("do I have any brothers or sisters?", "sister"),
    ("how many children do I have?", "kids"),
    ("who am I married to?", "partner"),
    ("when should you wish me a happy birthday?", "birthday"),
    ("what vehicle do I own?", "car"),
    ("which musical instrument do I perform with?", "guitar"),
    ("what exercise do I do?", "running"),
    ("should I order the steak for myself?", "vegetarian"),
    ("how do I take my coffee?", "coffee"),
    ("which Asian country did I visit?", "japan"),
    ("what language am I studying?", "spanish"),
    ("am I afraid of anything when I travel?", "flying"),
    ("what genre of books do I enjoy?", "books"),
    ("which soccer team am I a fan of?", "football"),
    ("do I have any plants?", "garden"),
    ("do I sleep well?", "insomnia"),
    ("do I have good eyesight?", "glasses"),
    ("what did I major in at college?", "studies"),
    ("how do I get to the office?", "bike"),
    ("where was our wedding held?", "wedding"),
    ("what's my best recipe?", "cooking"),
]

IDS = list(MEMORIES)


def _rank_metrics(memory_vectors: np.ndarray, query_vectors: np.ndarray) -> tuple[float, float, list[int]]:
    """MRR, recall@5 and each query's rank (1-based) of its relevant memory."""
    scores = query_vectors @ memory_vectors.T  # unit vectors: cosine = dot product
    order = np.argsort(-scores, axis=1, kind="stable")
    targets = np.array([IDS.index(target) for _, target in QUERIES])
    ranks = np.argmax(order == targets[:, None], axis=1) + 1
    return float(np.mean(1.0 / ranks)), float(np.mean(ranks <= 5)), ranks.tolist()


async def _vectors(embedder: Embedder, texts: list[str]) -> np.ndarray:
    return np.asarray(await embedder.embed(texts), dtype=np.float64)


@pytest.fixture(scope="module")
async def metrics() -> dict[str, tuple[float, float, list[int]]]:
    """Metrics per embedder; MiniLM is loaded once for the module."""
    results: dict[str, tuple[float, float, list[int]]] = {}
    memories = list(MEMORIES.values())
    queries = [q for q, _ in QUERIES]
    for embedder in (HashEmbedder(), MiniLMEmbedder()):
        memory_vectors = await _vectors(embedder, memories)
        query_vectors = await _vectors(embedder, queries)
        assert memory_vectors.shape == (len(memories), EMBEDDING_DIM)
        assert np.allclose(np.linalg.norm(memory_vectors, axis=1), 1.0, atol=1e-5)
        assert np.allclose(np.linalg.norm(query_vectors, axis=1), 1.0, atol=1e-5)
        results[embedder.name] = _rank_metrics(memory_vectors, query_vectors)
    print(f"\n{'embedder':<10}{'MRR':>8}{'R@5':>8}   ({len(QUERIES)} queries, {len(MEMORIES)} memories)")
    for name, (mrr, recall, _) in results.items():
        print(f"{name:<10}{mrr:>8.3f}{recall:>8.3f}")
    return results


def test_labelled_set_is_consistent() -> None:
    assert len(MEMORIES) >= 30
    assert len(QUERIES) >= 25
    assert all(target in MEMORIES for _, target in QUERIES)
    assert len({q for q, _ in QUERIES}) == len(QUERIES)


def test_rank_metrics_on_known_vectors() -> None:
    """The metric code itself: a perfect and a reversed ranking."""
    n = len(IDS)
    eye = np.eye(n)
    queries = np.stack([eye[IDS.index(t)] for _, t in QUERIES])
    mrr, recall, ranks = _rank_metrics(eye, queries)
    assert (mrr, recall) == (1.0, 1.0)
    assert set(ranks) == {1}
    worst = np.stack([1.0 - eye[IDS.index(t)] for _, t in QUERIES]) / np.sqrt(n - 1)
    mrr, recall, ranks = _rank_metrics(eye, worst)
    assert set(ranks) == {n}
    assert recall == 0.0
    assert mrr == pytest.approx(1 / n)


def test_minilm_beats_hash_on_paraphrases(
    metrics: dict[str, tuple[float, float, list[int]]], record_property: pytest.RecordProperty
) -> None:
    for name, (mrr, recall, _) in metrics.items():
        record_property(f"{name}_mrr", round(mrr, 4))
        record_property(f"{name}_recall_at_5", round(recall, 4))
    minilm_mrr, minilm_recall, _ = metrics["minilm"]
    hash_mrr, hash_recall, _ = metrics["hash"]
    assert minilm_mrr > hash_mrr
    assert minilm_recall > hash_recall


def test_minilm_recall_at_5(metrics: dict[str, tuple[float, float, list[int]]]) -> None:
    _, recall, ranks = metrics["minilm"]
    missed = [(q, rank) for (q, _), rank in zip(QUERIES, ranks, strict=True) if rank > 5]
    assert recall >= 0.8, f"missed at rank > 5: {missed}"
