"""k-means, shared by the self-supervised tasks and the W2PGNN graphon bases.

Used by :class:`graphkit.selftask.structure.Distance2Clusters` (partition of a spectral node
embedding) and :func:`graphkit.w2pgnn.graphon.graphon_bases` (the topological clusters of a
pre-training set).

Why not ``sklearn.cluster.KMeans``: scikit-learn is not a dependency of graphkit (it is
only installed as a dependency of ``ogb``), and its k-means++ draws its candidates from its own
random stream (several per step) where this one draws one point per step from the caller's
``numpy.random.Generator``.  Switching would change the clusters, hence the
self-supervision targets, the selected graphon bases and the published numbers built on them
(``docs/models/selftask.md``, ``docs/w2pgnn.md``); this implementation gives both callers
exactly the labels of the two copies it replaces.
"""
from __future__ import annotations

from typing import Union

import numpy as np

from .exceptions import ConfigError

__all__ = ["kmeans", "labels_by_first_appearance"]


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: the first centre uniformly, then each next one with probability
    proportional to the squared distance to the nearest centre so far (one draw per centre)."""
    n = x.shape[0]
    first = int(rng.integers(n))
    centers = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        tot = d2.sum()
        i = int(rng.choice(n, p=d2 / tot)) if tot > 0 else int(rng.integers(n))
        centers.append(x[i])
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(1))
    return np.stack(centers)


def _lloyd(x: np.ndarray, xx: np.ndarray, c: np.ndarray, max_iter: int) -> np.ndarray:
    """Lloyd iterations from the centres ``c`` until the assignment stops changing; an empty
    cluster is re-seeded with the worst-fitted point."""
    n, k = x.shape[0], c.shape[0]
    lab = np.zeros(n, dtype=np.int64)
    for it in range(max_iter):
        d = xx - 2 * x @ c.T + (c ** 2).sum(1)[None]  # squared distances without an [n, k, dim] temporary
        new = d.argmin(1)
        for j in range(k):  # re-seed an empty cluster with the worst-fitted point
            if not (new == j).any():
                far = int(d[np.arange(n), new].argmax())
                new[far] = j
                d[far] = -np.inf
        if it > 0 and np.array_equal(new, lab):
            break
        lab = new
        # a cluster the re-seeding above emptied again keeps its centre (no mean of nothing)
        c = np.stack([x[lab == j].mean(0) if (lab == j).any() else c[j] for j in range(k)])
    return lab


def kmeans(x: np.ndarray, k: int, seed: Union[int, np.random.Generator], *, n_init: int = 1,
           max_iter: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; the best of ``n_init`` runs.

    Deterministic for a fixed ``seed``.  Every run seeds its ``k`` centres by k-means++, then
    alternates assignment and centre update until the assignment stops changing (at most
    ``max_iter`` assignments); a cluster left empty is given the point farthest from its centre,
    so every label ``0..k-1`` is used when ``x`` has at least ``k`` distinct rows.  The run
    with the lowest inertia (sum of squared distances to the centres) wins; the first one on ties.

    Args:
        x: ``[n, dim]`` points (float64 is used).
        k: number of clusters, ``1 <= k <= n``.
        seed: an int seed, or a ``numpy.random.Generator`` that is used (and advanced) as is.
        n_init: number of runs.
        max_iter: maximum number of assignment steps per run.

    Returns:
        ``[n]`` int64 labels in ``0..k-1`` (numbered as the winning run's centres; see
        :func:`labels_by_first_appearance` for a numbering that does not depend on the run).

    Raises:
        ConfigError: ``x`` not 2-D, or ``k``, ``n_init``, ``max_iter`` out of range.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ConfigError(f"k-means needs a non-empty [n, dim] array, got shape {x.shape}")
    for name, value, low, high in (("k", k, 1, x.shape[0]), ("n_init", n_init, 1, None),
                                   ("max_iter", max_iter, 1, None)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or \
                (high is not None and value > high):
            bound = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
            raise ConfigError(f"k-means: {name} must be {bound}, got {value!r}")
    rng = np.random.default_rng(seed)  # returns a Generator unchanged
    xx = (x ** 2).sum(1, keepdims=True)
    best, best_inertia = None, np.inf
    for _ in range(int(n_init)):
        lab = _lloyd(x, xx, _kmeans_pp(x, int(k), rng), int(max_iter))
        centers = np.stack([x[lab == j].mean(0) if (lab == j).any() else np.zeros(x.shape[1]) for j in range(k)])
        inertia = float(((x - centers[lab]) ** 2).sum())
        if best is None or inertia < best_inertia - 1e-12:
            best, best_inertia = lab, inertia
    return best


def labels_by_first_appearance(labels: np.ndarray) -> np.ndarray:
    """Renumber cluster labels in order of first appearance (the first point's cluster is 0).

    Args:
        labels: ``[n]`` integer labels.

    Returns:
        ``[n]`` int64 labels ``0..m-1`` (``m`` distinct labels), the same partition.
    """
    labels = np.asarray(labels, dtype=np.int64)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.empty(first.shape[0], dtype=np.int64)
    order[np.argsort(first, kind="stable")] = np.arange(first.shape[0])
    return order[inverse.reshape(-1)]
