"""Graphon estimation (sorting-and-smoothing with total-variation denoising, plain histograms, or
USVT), topology statistics, k-means and graphon bases for :mod:`graphkit.w2pgnn`."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch

from .._cluster import kmeans, labels_by_first_appearance
from ..exceptions import ConfigError
from ._inputs import _check_nonempty, _GraphSet, _read, _read_with_domains


BASIS_TYPES = ("all", "domain", "cluster")
#: ``bases="paper"``: the bases of Cao et al. (2023), pooled into one generator space -- the
#: integrated basis ("all"), one basis per domain (when the pre-training graphs have at least two
#: domains) and ``num_bases`` topological clusters ("cluster", 5 by default).
PAPER_BASES = ("all", "domain", "cluster")
#: Graphon estimators of :func:`estimate_graphon`.
METHODS = ("sas", "histogram", "usvt")
#: Alignments of graphs of different sizes (see :func:`estimate_graphon`).
ALIGNMENTS = ("pad", "resize")
#: Default weight of the total-variation denoising of ``method="sas"`` (the ROF weight on the
#: histogram, in units of edge probability).  Chosen on synthetic validation data (seed 2 of
#: ``benchmarks/validate_w2pgnn.py``, not the seeds reported in the docs); see docs/w2pgnn.md.
DEFAULT_TV_WEIGHT = 0.01
STATISTIC_NAMES = (
    "log_num_nodes", "density", "mean_degree", "degree_std", "max_degree_frac",
    "avg_clustering", "transitivity", "leaf_fraction",
)
#: The size-invariant statistics ``bases="cluster"`` clusters on: a graphon does not fix the
#: number of nodes, and graphs of one graphon with different sizes have different mean degrees,
#: so log n, the mean degree and the raw degree std would split one generator's graphs by size.
#: ``degree_std_frac`` is the degree standard deviation / (n - 1).  On the synthetic validation
#: (4 graphons, 40-150 nodes per graph) this raised the purity of the clusters from 0.77-0.79
#: to 0.96-0.98.
CLUSTER_STATISTIC_NAMES = ("density", "degree_std_frac", "max_degree_frac", "avg_clustering", "transitivity",
                           "leaf_fraction")


def _cluster_features(stats: np.ndarray) -> np.ndarray:
    """Standardized size-invariant columns (:data:`CLUSTER_STATISTIC_NAMES`) of :func:`_statistics`."""
    n = np.exp(stats[:, 0])
    X = np.stack([stats[:, 1], stats[:, 3] / np.maximum(n - 1.0, 1.0), stats[:, 4], stats[:, 5], stats[:, 6],
                  stats[:, 7]], axis=1)
    std = X.std(0)
    return (X - X.mean(0)) / np.where(std > 0, std, 1.0)


# ============================================================================ graphon estimation
def _check_resolution(resolution: Any, name: str = "resolution") -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise ConfigError(f"{name} must be a positive integer, got {resolution!r}")
    return int(resolution)


def _block_masses(gs: _GraphSet, resolution: int, align: str) -> sp.csr_matrix:
    """Sparse [num_nodes, R] matrix: the mass each node puts in each of the R steps.

    Nodes are sorted by decreasing degree within their graph.  Tied nodes (same graph, same
    degree) share the union of their positions, so the result does not depend on node order.
    With ``align="resize"`` a graph of ``n`` nodes covers ``[0, 1]`` (mass ``1/n`` per node);
    with ``"pad"`` it covers ``[0, n/N]`` for the largest size ``N`` (mass ``1/N``), as when
    zero-padding the sorted adjacency matrices to a common size.
    """
    R = resolution
    deg = gs.degrees()
    ng = gs.node_graph()
    order = np.lexsort((-deg, ng))  # by graph, then decreasing degree
    # tie groups in sorted order
    sg, sd = ng[order], deg[order]
    new = np.ones(gs.num_nodes, dtype=bool)
    new[1:] = (sg[1:] != sg[:-1]) | (sd[1:] != sd[:-1])
    starts_sorted = np.maximum.accumulate(np.where(new, np.arange(gs.num_nodes), 0))
    last = np.ones(gs.num_nodes, dtype=bool)
    last[:-1] = new[1:]
    ends_sorted = np.minimum.accumulate(np.where(last, np.arange(gs.num_nodes), gs.num_nodes)[::-1])[::-1] + 1
    s = np.empty(gs.num_nodes, dtype=np.int64)
    e = np.empty(gs.num_nodes, dtype=np.int64)
    s[order] = starts_sorted - gs.offsets[sg]
    e[order] = ends_sorted - gs.offsets[sg]
    if align == "resize":
        den = gs.sizes[ng]
    elif align == "pad":
        den = np.full(gs.num_nodes, int(gs.sizes.max()), dtype=np.int64)
    else:
        raise ConfigError(f"align must be 'resize' or 'pad', got {align!r}")
    # exact integer overlaps, in units of 1 / (den * R): node interval [s R, e R), block a is [a den, (a+1) den)
    lo, hi = s * R, e * R
    a0 = lo // den
    a1 = (hi - 1) // den
    counts = a1 - a0 + 1
    rows = np.repeat(np.arange(gs.num_nodes, dtype=np.int64), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    blk = a0[rows] + np.arange(rows.shape[0], dtype=np.int64) - first
    d = den[rows]
    overlap = np.minimum(hi[rows], (blk + 1) * d) - np.maximum(lo[rows], blk * d)
    vals = overlap / ((e - s)[rows] * R * d).astype(np.float64)
    return sp.csr_matrix((vals, (rows, blk)), shape=(gs.num_nodes, R))


def _aligned_mean(gs: _GraphSet, resolution: int, align: str) -> np.ndarray:
    """Average over graphs of the degree-sorted adjacency, block-averaged to R x R:
    ``R^2 / G * sum_g M_g^T A_g M_g`` with M the node-to-step masses, as one sparse product."""
    R = resolution
    M = _block_masses(gs, R, align)
    upper = sp.csr_matrix((np.ones(gs.u.shape[0]), (gs.u, gs.v)), shape=(gs.num_nodes, gs.num_nodes))
    half = np.asarray((M.T @ (upper @ M)).todense())
    W = (half + half.T) * (R * R) / gs.num_graphs
    return np.clip(W, 0.0, 1.0)


def _usvt(gs: _GraphSet, resolution: int, align: str, fine: Optional[int]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Universal singular value thresholding (Chatterjee 2015) of the aligned average at a fine
    resolution M, clipped to [0, 1], then block-averaged to R x R."""
    R = resolution
    if fine is None:
        fine = int(max(R, min(int(np.median(gs.sizes)), 4 * R)))
    M = _check_resolution(fine, "usvt_resolution")
    A = _aligned_mean(gs, M, align)
    n = gs.sizes.astype(np.float64) if align == "resize" else np.full(gs.num_graphs, float(gs.sizes.max()))
    # operator norm of the averaged, resized noise: per graph 2 M sqrt(p(1-p)) * g(n, M)
    g2 = np.where(M >= n, 1.0 / n, M / n**2)
    pq = float(np.mean(A * (1.0 - A)))
    tau = 2.01 * M * math.sqrt(max(pq, 1e-12) * float(g2.sum())) / gs.num_graphs
    evals, evecs = np.linalg.eigh((A + A.T) / 2)
    keep = np.abs(evals) >= tau
    W_fine = np.clip((evecs[:, keep] * evals[keep]) @ evecs[:, keep].T, 0.0, 1.0)
    # block-average M -> R (exact overlaps of [i/M, (i+1)/M) with [a/R, (a+1)/R))
    P = _grid_overlap(M, R)
    W = (P.T @ W_fine @ P) * (R * R)
    return np.clip(W, 0.0, 1.0), {"usvt_resolution": M, "usvt_threshold": tau, "usvt_rank": int(keep.sum())}


def _grid_overlap(M: int, R: int) -> np.ndarray:
    """[M, R] overlaps |[i/M, (i+1)/M) ∩ [a/R, (a+1)/R)|."""
    i = np.arange(M)[:, None]
    a = np.arange(R)[None, :]
    ov = np.minimum((i + 1) * R, (a + 1) * M) - np.maximum(i * R, a * M)
    return np.clip(ov, 0, None) / float(M * R)


def _to_grid(W: np.ndarray, R: int) -> np.ndarray:
    """An M x M step function on [0, 1]^2 as R x R block averages (exact overlaps; when R is a
    multiple of M the step function is represented exactly)."""
    M = W.shape[0]
    if M == R:
        return W
    P = _grid_overlap(M, R)
    return (P.T @ W @ P) * (R * R)


def paper_block_size(num_nodes: int) -> int:
    """Block size ``h = floor(log2 N) + 1`` (nodes per histogram block) of sorting-and-smoothing as
    the W2PGNN authors use it, for padded graphs of ``N`` nodes.

    Args:
        num_nodes: N, the common (padded) size: the largest graph of the set.

    Returns:
        h >= 1.
    """
    return int(math.floor(math.log2(max(int(num_nodes), 1)))) + 1


def _tv_grad(u: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    gx = np.zeros_like(u)
    gy = np.zeros_like(u)
    gx[:-1, :] = u[1:, :] - u[:-1, :]
    gy[:, :-1] = u[:, 1:] - u[:, :-1]
    return gx, gy


def _tv_div(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Discrete divergence, the negative adjoint of :func:`_tv_grad` (Neumann boundary)."""
    d = np.zeros_like(px)
    d[:-1, :] += px[:-1, :]
    d[1:, :] -= px[:-1, :]
    d[:, :-1] += py[:, :-1]
    d[:, 1:] -= py[:, :-1]
    return d


def tv_denoise(image: Any, weight: float, *, max_iter: int = 20000, tol: float = 1e-6) -> np.ndarray:
    """Total-variation denoising (the ROF model) of a 2-D array.

    Returns ``argmin_u 0.5 * ||u - f||^2 + weight * TV(u)``, ``TV(u) = sum_ij |grad u|_ij``
    (isotropic; forward differences, Neumann boundary) -- the smoothing step of
    sorting-and-smoothing (Chan & Airoldi, ICML 2014).  Same model and parameterization as
    scikit-image's ``denoise_tv_chambolle(f, weight=weight)``; solved on Chambolle's dual
    (A. Chambolle, J. Math. Imaging Vis. 20, 2004) by fast gradient projection (Beck &
    Teboulle, IEEE Trans. Image Process. 18, 2009), and stopped by a duality-gap certificate
    instead of a step-size heuristic.  Written here (about 30 lines) so that graphkit needs no
    image-processing dependency; the tests check it against a generic solver and scikit-image.

    Args:
        image: 2-D array f (numpy or torch), float64 is used.
        weight: the TV weight (>= 0; 0 returns f unchanged).  Large weights flatten f towards
            its mean (the solution is exactly the constant mean once the weight exceeds f's
            G-norm).
        max_iter: cap on the iterations.
        tol: stop once the duality gap certifies ``||u - u*||_2 <= tol * (max f - min f) *
            sqrt(f.size)`` (u* the exact solution), i.e. a root-mean-square error of at most
            ``tol`` relative to f's range.

    Returns:
        The denoised float64 numpy array (same shape; its mean equals f's mean).
    """
    f = np.asarray(image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image, dtype=np.float64)
    if f.ndim != 2:
        raise ConfigError(f"tv_denoise expects a 2-D array, got shape {f.shape}")
    w = _check_tv_weight(weight, allow_paper=False)
    scale = float(f.max() - f.min()) if f.size else 0.0
    if w == 0.0 or scale == 0.0:
        return f.copy()
    gap_tol = 0.5 * (tol * scale) ** 2 * f.size  # 0.5 ||u - u*||^2 <= primal - dual
    px, py = np.zeros_like(f), np.zeros_like(f)  # the dual field; u = f - w div p, |p_ij| <= 1
    rx, ry, t = px, py, 1.0
    u = f
    for it in range(1, int(max_iter) + 1):
        # projected gradient step on 0.5 ||f - w div p||^2 (Lipschitz 8 w^2) from the extrapolated r
        gx, gy = _tv_grad(f - w * _tv_div(rx, ry))
        qx, qy = rx - gx / (8.0 * w), ry - gy / (8.0 * w)
        norm = np.maximum(1.0, np.sqrt(qx * qx + qy * qy))
        qx, qy = qx / norm, qy / norm
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        rx, ry = qx + (t - 1.0) / t_new * (qx - px), qy + (t - 1.0) / t_new * (qy - py)
        px, py, t = qx, qy, t_new
        if it % 10 == 0 or it == max_iter:
            u = f - w * _tv_div(px, py)
            ux, uy = _tv_grad(u)
            primal = 0.5 * float(((u - f) ** 2).sum()) + w * float(np.sqrt(ux * ux + uy * uy).sum())
            dual = 0.5 * float((f * f).sum()) - 0.5 * float((u * u).sum())
            if primal - dual <= gap_tol:
                break
    return u


def _check_tv_weight(weight: Any, allow_paper: bool = True) -> Union[float, str]:
    if allow_paper and isinstance(weight, str) and weight == "authors":
        return weight
    if (isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating))
            or not math.isfinite(float(weight)) or weight < 0):
        extra = " or 'authors'" if allow_paper else ""
        raise ConfigError(f"tv_weight must be a non-negative number{extra}, got {weight!r}")
    return float(weight)


def _check_blocks(blocks: Any) -> Optional[int]:
    if blocks is None:
        return None
    return _check_resolution(blocks, "blocks")


def _sas(gs: _GraphSet, R: int, align: str, blocks: Optional[int], tv_weight: Union[float, str]
         ) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Sorting-and-smoothing: the aligned average as an m x m histogram (m = ``blocks``, or the
    paper's N // (floor(log2 N) + 1)), total-variation denoised, then put on the R x R grid."""
    N = int(gs.sizes.max())
    h = paper_block_size(N)
    m = max(1, N // h) if blocks is None else blocks
    H = _aligned_mean(gs, m, align)
    w = float(h) if tv_weight == "authors" else float(tv_weight)
    S = np.clip(tv_denoise(H, w), 0.0, 1.0) if w > 0 else H
    return np.clip(_to_grid(S, R), 0.0, 1.0), {"sas_blocks": m, "tv_weight": w, "max_size": N}


def estimate_graphon(
    graphs: Any,
    resolution: int = 32,
    *,
    method: str = "sas",
    align: str = "pad",
    blocks: Optional[int] = None,
    tv_weight: Union[float, str] = DEFAULT_TV_WEIGHT,
    usvt_resolution: Optional[int] = None,
    drop_empty: bool = False,
) -> torch.Tensor:
    """Estimate one step graphon from a set of graphs.

    Each graph is made simple and undirected (directions, weights, duplicates and self-loops
    dropped), its nodes are sorted by decreasing degree (tied nodes share their positions, so
    the estimate is invariant to node order) and its adjacency is laid on ``[0, 1]^2``
    (``align``); the aligned adjacencies are averaged over the graphs.  The defaults are the
    pipeline of Cao et al. (2023): zero-padding, then sorting-and-smoothing.

    Args:
        graphs: a Graph, PyG Data, networkx graph, a list of these, a PyG dataset, a
            graphkit ``GraphPropDataset`` or a dataset name (``graphkit.datasets.load``).
        resolution: number of steps R of the returned step function.
        method: ``"sas"`` (default) -- sorting-and-smoothing (Chan & Airoldi 2014): the average
            as an ``m x m`` histogram of equal blocks, denoised by total variation
            (:func:`tv_denoise`, weight ``tv_weight``), then written on the R x R grid by exact
            block averages; ``"histogram"`` -- the average block-averaged straight onto the
            R x R grid, no denoising (graphkit's default before 2026-12); ``"usvt"`` --
            universal singular value thresholding of the average at ``usvt_resolution``
            (default ``min(median size, 4R)``, at least R), clipped to [0, 1], then
            block-averaged to R x R.
        align: ``"pad"`` (default; zero-padding: with N the largest graph of the set, a graph
            of n nodes covers ``[0, n/N]``, node i owning ``[i/N, (i+1)/N)``, as the paper pads
            the sorted adjacency matrices to a common size) or ``"resize"`` (every graph
            covers ``[0, 1]``, node i of n owning ``[i/n, (i+1)/n)``).
        blocks: ``"sas"`` only: the number m of histogram blocks.  ``None`` (default): the
            paper's rule, blocks of ``h = floor(log2 N) + 1`` nodes (:func:`paper_block_size`),
            ``m = max(1, N // h)``; the m blocks split ``[0, 1]`` equally (N/m nodes each,
            fractional overlaps counted exactly).
        tv_weight: ``"sas"`` only: weight of the TV denoising on the m x m histogram (the
            ROF weight, see :func:`tv_denoise`); default :data:`DEFAULT_TV_WEIGHT`; 0 = no
            denoising; ``"authors"`` = ``h``, the value in the authors' code, which flattens
            every estimate to (almost) a constant, its mean (docs/w2pgnn.md).
        usvt_resolution: see ``method``.
        drop_empty: drop graphs without nodes instead of raising :class:`GraphError`.

    Returns:
        A float64 tensor [R, R], symmetric, values in [0, 1]; ``W[a, b]`` is the edge
        probability between the a-th and the b-th of R equal slices of ``[0, 1]`` (slice 0
        holds the highest-degree nodes).

    Raises:
        ConfigError: bad options (``method``, ``align``, ``resolution``, ``blocks``,
            ``tv_weight``) or inputs that are not graphs.
        GraphError: malformed graphs, graphs without nodes (unless ``drop_empty``).
    """
    R = _check_resolution(resolution)
    opts = _estimator_options(method, align, blocks, tv_weight, usvt_resolution)
    gs, _ = _check_nonempty(_read(graphs, "graphs"), "graphs", drop_empty)
    return _estimate(gs, R, opts)[0]


def _estimator_options(method: Any, align: Any, blocks: Any, tv_weight: Any, usvt_resolution: Any
                       ) -> Dict[str, Any]:
    """Validated estimator options (raises ConfigError naming the bad one)."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if align not in ALIGNMENTS:
        raise ConfigError(f"align must be one of {ALIGNMENTS}, got {align!r}")
    return {"method": method, "align": align, "blocks": _check_blocks(blocks),
            "tv_weight": _check_tv_weight(tv_weight),
            "usvt_resolution": None if usvt_resolution is None else _check_resolution(usvt_resolution,
                                                                                      "usvt_resolution")}


def _estimate(gs: _GraphSet, R: int, opts: Dict[str, Any]) -> Tuple[torch.Tensor, Dict[str, Any]]:
    method, align = opts["method"], opts["align"]
    if method == "sas":
        W, info = _sas(gs, R, align, opts["blocks"], opts["tv_weight"])
    elif method == "histogram":
        W, info = _aligned_mean(gs, R, align), {}
    else:
        W, info = _usvt(gs, R, align, opts["usvt_resolution"])
    return torch.from_numpy(np.ascontiguousarray(W)), info


# ============================================================================ topology statistics
def _statistics(gs: _GraphSet) -> np.ndarray:
    n = gs.sizes.astype(np.float64)
    G = gs.num_graphs
    ng = gs.node_graph()
    deg = gs.degrees().astype(np.float64)
    m = gs.edge_counts().astype(np.float64)
    A = gs.adjacency()
    tri = np.asarray((A @ A).multiply(A).sum(axis=1)).ravel() / 2.0  # triangles at each node
    pairs = deg * (deg - 1) / 2.0
    local = np.divide(tri, pairs, out=np.zeros_like(tri), where=pairs > 0)

    def per_graph(x: np.ndarray) -> np.ndarray:
        return np.bincount(ng, weights=x, minlength=G)

    safe_n = np.maximum(n, 1.0)
    mean_deg = per_graph(deg) / safe_n
    var = np.maximum(per_graph(deg**2) / safe_n - mean_deg**2, 0.0)
    maxdeg = np.zeros(G)
    np.maximum.at(maxdeg, ng, deg)
    tri_g, pairs_g = per_graph(tri), per_graph(pairs)
    return np.stack([
        np.log(safe_n),
        np.divide(2 * m, n * (n - 1), out=np.zeros(G), where=n > 1),
        mean_deg,
        np.sqrt(var),
        np.divide(maxdeg, np.maximum(n - 1, 1.0)),
        per_graph(local) / safe_n,
        np.divide(tri_g, pairs_g, out=np.zeros(G), where=pairs_g > 0),
        per_graph((deg == 1).astype(np.float64)) / safe_n,
    ], axis=1)


def graph_statistics(graphs: Any) -> "Any":
    """Topology statistics of each graph (:func:`graphon_bases` clusters on their size-invariant
    part, :data:`CLUSTER_STATISTIC_NAMES`).

    Columns (:data:`STATISTIC_NAMES`): log number of nodes, density, mean degree, degree
    standard deviation, max degree / (n - 1), average local clustering coefficient (nodes of
    degree < 2 count as 0, as in networkx), transitivity, fraction of degree-1 nodes.

    Args:
        graphs: the graphs, in any form :func:`feasibility` accepts for one set (a
            :class:`~graphkit.graph.Graph`, PyG ``Data``, networkx graph, a list of them, ...).

    Returns:
        A pandas DataFrame with one row per graph.
    """
    import pandas as pd

    gs = _read(graphs, "graphs")
    return pd.DataFrame(_statistics(gs), columns=list(STATISTIC_NAMES))


def _kmeans(X: np.ndarray, k: int, seed: int, n_init: int = 10, max_iter: int = 100) -> np.ndarray:
    """:func:`graphkit._cluster.kmeans` (best of ``n_init`` runs), labels ordered by first
    appearance so they do not depend on the run that won."""
    return labels_by_first_appearance(kmeans(X, k, seed, n_init=n_init, max_iter=max_iter))


def graphon_bases(
    pretrain: Any,
    bases: Union[str, Sequence[str]] = "paper",
    *,
    num_bases: int = 5,
    resolution: int = 32,
    method: str = "sas",
    align: str = "pad",
    blocks: Optional[int] = None,
    tv_weight: Union[float, str] = DEFAULT_TV_WEIGHT,
    domains: Optional[Sequence[Any]] = None,
    seed: int = 0,
    drop_empty: bool = False,
) -> Tuple[torch.Tensor, List[str], Dict[str, Any]]:
    """The graphon bases of a pre-training set.

    Args:
        pretrain: graphs as accepted by :func:`feasibility`; a dict ``{domain: graphs}`` or a
            list of datasets / dataset names / lists of graphs also defines domains.
        bases: ``"paper"`` (default: the paper's integrated + domain + topological bases pooled,
            :data:`PAPER_BASES`; the domain bases only when the graphs have at least two
            domains, and ``min(num_bases, number of graphs)`` clusters), ``"all"`` (one basis
            from every graph: the *integrated* basis), ``"domain"`` (one per domain, from the
            dict keys, the list's items or ``domains=``), ``"cluster"`` (the *topological*
            bases: k-means on the standardized size-invariant statistics
            :data:`CLUSTER_STATISTIC_NAMES`, ``num_bases`` clusters, seeded), or a list of
            distinct kinds to pool.
        num_bases: number of clusters for ``"cluster"`` (default 5, as the paper).
        resolution, method, align, blocks, tv_weight: the graphon estimator, see
            :func:`estimate_graphon` (every basis is estimated from its own graphs, padded to
            its own largest graph).
        domains: one domain label per graph (overrides the structure of ``pretrain``).
        seed: seed of k-means.
        drop_empty: drop graphs without nodes instead of raising.

    Returns:
        ``(bases [K, R, R] float64, names, info)``; ``info`` has ``assignments`` (per kind, the
        basis of each pre-training graph), ``sizes`` (graphs per basis) and ``statistics``.
    """
    R = _check_resolution(resolution)
    opts = _estimator_options(method, align, blocks, tv_weight, None)
    paper = isinstance(bases, str) and bases == "paper"
    kinds = list(PAPER_BASES) if paper else ([bases] if isinstance(bases, str) else list(bases))
    if not kinds or any(k not in BASIS_TYPES for k in kinds) or len(set(kinds)) != len(kinds):
        raise ConfigError(f"bases must be 'paper', one of {BASIS_TYPES} or a list of distinct ones, got {bases!r}")
    if isinstance(num_bases, bool) or not isinstance(num_bases, (int, np.integer)) or num_bases < 1:
        raise ConfigError(f"num_bases must be a positive integer, got {num_bases!r}")
    gs, dom_names, dom_labels = _read_with_domains(pretrain, domains, "pretrain")
    gs, keep = _check_nonempty(gs, "pretrain", drop_empty)
    if dom_labels is not None:
        dom_labels = dom_labels[keep]
    if paper:
        if dom_labels is None or np.unique(dom_labels).shape[0] < 2:
            kinds.remove("domain")
        num_bases = min(int(num_bases), gs.num_graphs)
    out: List[torch.Tensor] = []
    names: List[str] = []
    info: Dict[str, Any] = {"assignments": {}, "sizes": [], "num_graphs": gs.num_graphs, "kinds": list(kinds)}
    for kind in kinds:
        if kind == "all":
            labels, label_names = np.zeros(gs.num_graphs, np.int64), ["all"]
        elif kind == "domain":
            if dom_labels is None:
                raise ConfigError(
                    "bases='domain' needs domains: pass pretrain as a dict {domain: graphs}, a list of datasets or "
                    "dataset names, or domains=[one label per graph]"
                )
            present = np.unique(dom_labels)
            remap = np.full(len(dom_names), -1, np.int64)
            remap[present] = np.arange(present.shape[0])
            labels = remap[dom_labels]
            label_names = [f"domain {dom_names[i]}" for i in present]
        else:
            if num_bases > gs.num_graphs:
                raise ConfigError(f"num_bases={num_bases} exceeds the number of pre-training graphs ({gs.num_graphs})")
            stats = _statistics(gs)
            X = _cluster_features(stats)
            info["statistics"] = stats
            labels = _kmeans(X, int(num_bases), seed)
            label_names = [f"cluster {j}" for j in range(int(labels.max()) + 1)]
        info["assignments"][kind] = labels
        for j, nm in enumerate(label_names):
            sel = np.flatnonzero(labels == j)
            out.append(_estimate(gs.select(sel), R, opts)[0])
            names.append(nm)
            info["sizes"].append(int(sel.shape[0]))
    return torch.stack(out), names, info
