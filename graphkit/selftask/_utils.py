"""Shared helpers of :mod:`graphkit.selftask`: argument checks, graph and BFS helpers, label
generators (label propagation, iterative classification), context distributions, clustering."""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.sparse import csgraph

from ..exceptions import ConfigError
from ..graph import Graph

__all__ = ["label_propagation", "iterative_classification", "context_distribution", "shortest_path_lengths"]

# ----------------------------------------------------------------------------- argument checks


def _int_arg(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _float_arg(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
               high_open: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lb, hb = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(f"{name} must be a number in {lb}{low}, {high}{hb}, got {value!r}")
    return float(value)


def _choice_arg(name: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


# ----------------------------------------------------------------------------- graph helpers


def _structure(graph: Graph) -> sp.csr_matrix:
    """Binary symmetric adjacency without self-loops (scipy CSR, float32)."""
    n = graph.num_nodes
    row = graph.row.cpu().numpy()
    col = graph.indices.cpu().numpy()
    keep = row != col
    row, col = row[keep], col[keep]
    a = sp.csr_matrix((np.ones(2 * row.shape[0], np.float32), (np.r_[row, col], np.r_[col, row])), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1.0
    a.sort_indices()
    return a


def shortest_path_lengths(adj: Union[Graph, sp.spmatrix], sources: Any, chunk: int = 256):
    """Hop distances from ``sources`` to every node, in chunks of ``chunk`` sources.

    Args:
        adj: a :class:`Graph` (read as undirected) or a symmetric scipy adjacency.
        sources: node ids.
        chunk: sources per BFS batch (memory is ``chunk × N`` float64).

    Yields:
        ``(source_ids, distances)`` with ``distances`` float64 ``[len(source_ids), N]``
        (``inf`` for unreachable nodes).
    """
    a = _structure(adj) if isinstance(adj, Graph) else sp.csr_matrix(adj)
    src = np.asarray(sources, dtype=np.int64).reshape(-1)
    for start in range(0, src.shape[0], chunk):
        part = src[start:start + chunk]
        d = csgraph.shortest_path(a, method="D", directed=False, unweighted=True, indices=part)
        yield part, np.atleast_2d(d)


def _sym_norm(a: sp.csr_matrix, self_loops: bool) -> sp.csr_matrix:
    if self_loops:
        a = (a + sp.identity(a.shape[0], dtype=a.dtype, format="csr")).tocsr()
    deg = np.asarray(a.sum(1)).ravel()
    dinv = np.zeros_like(deg)
    nz = deg > 0
    dinv[nz] = deg[nz] ** -0.5
    d = sp.diags(dinv)
    return (d @ a @ d).tocsr()


def _khop_reach(a: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Binary matrix R with R[v, u] = 1 iff 1 <= dist(v, u) <= k (v itself excluded)."""
    reach = a.copy()
    frontier = a.copy()
    for _ in range(k - 1):
        frontier = frontier @ a
        frontier.data[:] = 1.0
        reach = reach + frontier
        reach.data[:] = 1.0
    reach = reach.tolil()
    reach.setdiag(0)
    reach = reach.tocsr()
    reach.eliminate_zeros()
    reach.data[:] = 1.0
    return reach


def _row_l2(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _np(t: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    a = np.asarray(t)
    return a.astype(dtype) if dtype is not None else a


def _cap_inf(d: np.ndarray, cap: float) -> np.ndarray:
    out = d.copy()
    out[~np.isfinite(out)] = cap
    return out


# ----------------------------------------------------------------------------- label generators


def label_propagation(graph: Graph, train_idx: Any, y_train: Any, num_classes: int, alpha: float = 0.9,
                      num_iters: int = 50) -> np.ndarray:
    """Label propagation (Zhou et al., 2004) from the training labels only.

    ``F ← α S F + (1 − α) Y`` with ``S = D^-1/2 A D^-1/2`` (undirected, no self-loops) and
    ``Y`` the one-hot training labels, ``num_iters`` times.

    Args:
        graph: the graph (read as undirected, unweighted).
        train_idx: the training nodes.
        y_train: their labels, ``0 .. num_classes - 1``.
        num_classes: number of classes C.
        alpha: weight of the propagated scores against the training labels.
        num_iters: number of propagation steps.

    Returns:
        Row-stochastic class scores float64 ``[N, C]``; training rows are their one-hot
        labels, rows the propagation never reached are uniform.
    """
    alpha = _float_arg("alpha", alpha, 0.0, 1.0, high_open=True)
    num_iters = _int_arg("num_iters", num_iters, 1)
    n = graph.num_nodes
    tr = _np(train_idx, np.int64)
    yt = _np(y_train, np.int64)
    s = _sym_norm(_structure(graph), self_loops=False)
    y0 = np.zeros((n, num_classes))
    y0[tr, yt] = 1.0
    f = y0.copy()
    for _ in range(num_iters):
        f = alpha * (s @ f) + (1 - alpha) * y0
    tot = f.sum(1, keepdims=True)
    f = np.divide(f, tot, out=np.full_like(f, 1.0 / num_classes), where=tot > 0)
    f[tr] = y0[tr]
    return f


def _fit_softmax(x: np.ndarray, y: np.ndarray, num_classes: int, reg: float, steps: int = 100) -> np.ndarray:
    """Multinomial logistic regression (L2 ``reg``) by L-BFGS from zero: returns W [F+1, C]."""
    xt = torch.from_numpy(np.c_[x, np.ones(x.shape[0])].astype(np.float64))
    yt = torch.from_numpy(y)
    w = torch.zeros(xt.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w, yt) + reg * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def _predict_softmax(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    z = np.c_[x, np.ones(x.shape[0])] @ w
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def iterative_classification(graph: Graph, x: Any, train_idx: Any, y_train: Any, num_classes: int,
                             num_iters: int = 3, reg: float = 1e-3) -> np.ndarray:
    """Iterative classification (ICA, Lu & Getoor 2003) from the training labels only.

    A logistic regression on the L2-normalised features is fitted on the training nodes;
    then ``num_iters`` times, every node gets the relational feature "mean label
    distribution of its neighbours" (training nodes contribute their one-hot label, others
    the current prediction) and a logistic regression on ``[features, relational]`` is
    refitted on the training nodes and predicts every node.

    Args:
        graph: the graph (read as undirected, unweighted).
        x: node features ``[N, F]``.
        train_idx: the training nodes.
        y_train: their labels, ``0 .. num_classes - 1``.
        num_classes: number of classes C.
        num_iters: number of relational rounds.
        reg: L2 regularisation strength of the logistic regressions.

    Returns:
        Class probabilities float64 ``[N, C]`` (training rows one-hot).
    """
    num_iters = _int_arg("num_iters", num_iters, 0)
    tr = _np(train_idx, np.int64)
    yt = _np(y_train, np.int64)
    feats = _row_l2(_np(x, np.float64))
    a = _structure(graph)
    deg = np.asarray(a.sum(1)).ravel()
    arw = sp.diags(np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)) @ a
    w = _fit_softmax(feats[tr], yt, num_classes, reg)
    p = _predict_softmax(feats, w)
    onehot = np.eye(num_classes)[yt]
    for _ in range(num_iters):
        lab = p.copy()
        lab[tr] = onehot
        z = np.c_[feats, arw @ lab]
        w = _fit_softmax(z[tr], yt, num_classes, reg)
        p = _predict_softmax(z, w)
    p[tr] = onehot
    return p


def context_distribution(reach: sp.csr_matrix, labels: np.ndarray, num_classes: int) -> Tuple[np.ndarray, np.ndarray]:
    """Label distribution of each node's context.

    Args:
        reach: binary ``[N, N]`` context matrix (row v marks the nodes in v's context).
        labels: int ``[N]`` with ``-1`` for nodes whose label is unknown (not counted), or
            soft labels float ``[N, C]`` (rows summing to 1; all-zero rows are not counted).
        num_classes: C.

    Returns:
        ``(dist, has_context)``: float32 ``[N, C]`` rows summing to 1 (zero rows where no
        labelled node is in the context) and the boolean mask of non-empty contexts.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if labels.ndim == 1:
        labels = labels.astype(np.int64)
        known = labels >= 0
        mat = sp.csr_matrix((np.ones(int(known.sum())), (np.flatnonzero(known), labels[known])), shape=(n, num_classes))
        counts = np.asarray((reach @ mat).todense(), dtype=np.float64)
    else:
        counts = np.asarray(reach @ labels.astype(np.float64))
    tot = counts.sum(1, keepdims=True)
    dist = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
    return dist.astype(np.float32), tot.ravel() > 0


# ----------------------------------------------------------------------------- clustering helpers


def _spectral_embedding(a: sp.csr_matrix, dim: int) -> np.ndarray:
    """Top-``dim`` eigenvectors of ``D^-1/2 (A + I) D^-1/2``, rows L2-normalised (Ng–Jordan–Weiss)."""
    m = _sym_norm(a, self_loops=True)
    n = m.shape[0]
    if n <= 1500 or dim >= n - 1:
        vals, vecs = np.linalg.eigh(m.toarray())
        vecs = vecs[:, np.argsort(-vals)[:dim]]
    else:
        from scipy.sparse.linalg import eigsh

        v0 = np.ones(n) / math.sqrt(n)
        vals, vecs = eigsh(m, k=dim, which="LA", v0=v0, tol=1e-8, maxiter=20 * n)
        vecs = vecs[:, np.argsort(-vals)]
    return _row_l2(vecs)


# ----------------------------------------------------------------------------- loss helpers


def _pair_features(hidden: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (hidden[u] - hidden[v]).abs()


def _zscore(t: np.ndarray, axis: Optional[int] = 0) -> np.ndarray:
    mean = t.mean(axis=axis, keepdims=True)
    std = t.std(axis=axis, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return ((t - mean) / std).astype(np.float32)
