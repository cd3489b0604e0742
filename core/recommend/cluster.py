"""Clusters of run inputs: TF-IDF, a truncated SVD to a few dense dimensions, then HDBSCAN (scikit-learn).

No model is downloaded: the vectors come from the texts themselves. The SVD (seeded) makes the
vectors dense and short so HDBSCAN's neighbour search stays fast; vectors are L2-normalized, so
euclidean distances order like cosine ones. HDBSCAN picks the number of clusters itself and
leaves outliers unclustered (label ``-1``). CPU-bound: run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

DIMENSIONS = 16
TERMS = 5
SEED = 0


@dataclass(frozen=True)
class Clusters:
    """A label per text (``-1``: in no cluster) and each cluster's most characteristic terms."""

    labels: list[int]
    terms: dict[int, list[str]]


def min_cluster_size(n: int, floor: int) -> int:
    """The smallest cluster worth a finding among ``n`` texts: ``floor``, or 2% of them when that is more."""
    return max(floor, n // 50)


def cluster(texts: Sequence[str], *, smallest: int) -> Clusters:
    """Cluster ``texts``; clusters have at least ``smallest`` members (none when the texts have too few terms)."""
    if len(texts) < 2 * smallest:
        return Clusters([-1] * len(texts), {})
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, max_df=0.9, max_features=5000, stop_words="english")
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError:  # no term is left (every text is stop words, or each term occurs once)
        return Clusters([-1] * len(texts), {})
    if tfidf.shape[1] < 3:
        return Clusters([-1] * len(texts), {})
    dense = TruncatedSVD(n_components=min(DIMENSIONS, tfidf.shape[1] - 1), random_state=SEED).fit_transform(tfidf)
    vectors = normalize(dense)
    labels = HDBSCAN(min_cluster_size=smallest, min_samples=min(10, smallest), copy=True).fit_predict(vectors)
    names = vectorizer.get_feature_names_out()
    terms: dict[int, list[str]] = {}
    for label in sorted(set(labels.tolist()) - {-1}):
        weights = np.asarray(tfidf[labels == label].mean(axis=0)).ravel()
        terms[label] = [str(names[i]) for i in np.argsort(-weights, kind="stable")[:TERMS] if weights[i] > 0]
    return Clusters([int(label) for label in labels], terms)
