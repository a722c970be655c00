r"""UltraGCN: graph convolution approximated by constraint losses (Mao et al., CIKM 2021).

One model per file.  The data-dependent pre-computation (degree weights β and the
item–item neighbour lists) lives in the two module functions
:func:`degree_weights` and :func:`item_item_neighbors`, which
:meth:`UltraGCN.prepare` calls once; the item–item step runs in bounded memory
(row chunks of G = RᵀR), never materializing the dense I × I matrix.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Any, ClassVar, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..exceptions import ConfigError, TrainingError
from ..graph import Graph
from .base import RecommenderModel
from .svd_start import svd_start

__all__ = ["UltraGCN", "degree_weights", "item_item_neighbors"]

#: Values of ``UltraGCN(negative_sampling=...)``: exclude the user's training items from the
#: negatives (graphkit's sampler), or draw them from all items (the authors' configs).
NEGATIVE_SAMPLING = ("exclude_positives", "all_items")
#: Values of ``UltraGCN(init=...)``: the paper's normal draw, or the SVD warm start.
INITS = ("normal", "svd")

# Estimated peak working memory of item_item_neighbors per stored entry of a G-chunk
# (sparse product, index arrays, weights, sort permutation and temporaries of the NumPy
# path; conservative for the numba kernel, which only needs the sparse product).
_BYTES_PER_ENTRY = 96


# --------------------------------------------------------------------------- validation helpers
def _check_real(name: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float that is >= 0 (> 0 when ``positive``), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise ConfigError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if positive and v <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    if v < 0:
        raise ConfigError(f"{name} must be non-negative, got {value!r}")
    return v


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools and non-integral floats rejected), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _binary_csr(train: Any, name: str = "train") -> sp.csr_matrix:
    """``train`` as a float32 CSR matrix with every stored non-zero set to 1 (duplicates merged)."""
    if not sp.issparse(train):
        try:
            train = sp.csr_matrix(np.asarray(train))
        except Exception as exc:
            raise ConfigError(f"{name} must be a scipy.sparse [U, I] matrix, got {type(train).__name__}") from exc
    if train.ndim != 2:
        raise ConfigError(f"{name} must be 2-D [U, I], got shape {train.shape}")
    R = sp.csr_matrix(train, dtype=np.float32, copy=True)
    R.sum_duplicates()
    R.eliminate_zeros()
    R.data[:] = 1.0
    return R


# --------------------------------------------------------------------------- pre-computation
def degree_weights(train: sp.spmatrix) -> Tuple[np.ndarray, np.ndarray]:
    r"""Per-user and per-item factors of the constraint weights β (paper: "Learning on User-Item Graph").

    ``β_{u,i} = (1/d_u) · sqrt((d_u + 1) / (d_i + 1)) = β_u · β_i`` with

    * ``β_u = sqrt(d_u + 1) / d_u`` and
    * ``β_i = 1 / sqrt(d_i + 1)``,

    where ``d`` are training degrees (the ``+1`` is the self-loop of the LightGCN
    propagation whose infinite-layer limit UltraGCN approximates).

    Zero degrees: a user without training interactions gets ``β_u = 0`` (the formula
    would divide by zero; such a user never appears as a training positive).  An item
    without interactions gets the finite formula value ``β_i = 1`` and needs no special case.

    Args:
        train: the [U, I] training interactions; any stored non-zero counts as one
            interaction, duplicates are merged.

    Returns:
        ``(beta_user [U], beta_item [I])`` as float64 arrays.
    """
    R = _binary_csr(train)
    d_u = np.diff(R.indptr).astype(np.float64)
    d_i = np.bincount(R.indices, minlength=R.shape[1]).astype(np.float64)
    beta_user = np.zeros_like(d_u)
    nz = d_u > 0
    beta_user[nz] = np.sqrt(d_u[nz] + 1.0) / d_u[nz]
    beta_item = 1.0 / np.sqrt(d_i + 1.0)
    return beta_user, beta_item


def _plan_chunks(row_bound: np.ndarray, chunk_size: int, max_entries: int) -> list[Tuple[int, int]]:
    """Consecutive row ranges with at most ``chunk_size`` rows and about ``max_entries``
    (upper bound) stored entries each; a single heavier row forms its own chunk."""
    n = row_bound.shape[0]
    cum = np.concatenate([[0], np.cumsum(row_bound, dtype=np.int64)])
    chunks = []
    start = 0
    while start < n:
        end = int(np.searchsorted(cum, cum[start] + max_entries, side="right")) - 1
        end = min(max(end, start + 1), start + chunk_size, n)
        chunks.append((start, end))
        start = end
    return chunks


def item_item_neighbors(
    train: sp.spmatrix,
    num_neighbors: int,
    *,
    chunk_size: int = 1024,
    chunk_memory_mb: float = 256.0,
) -> Tuple[np.ndarray, np.ndarray]:
    r"""Top-K item–item neighbours S(i) and their weights ω ("Learning on Item-Item Graph"), in bounded memory.

    With the binary interaction matrix R [U, I], the co-occurrence graph is
    ``G = RᵀR`` (``G_ij`` = number of users who interacted with both i and j,
    ``G_ii = d_i``), ``g_i = Σ_k G_ik`` and

    ``ω_{i,j} = G_ij / (g_i − G_ii) · sqrt(g_i / g_j)``     for j ≠ i.

    For each item the ``num_neighbors`` largest ω over j ≠ i with ``G_ij > 0`` are kept,
    ordered by decreasing ω (ties: smaller j first, so the result is deterministic).

    G is built ``chunk_size`` rows at a time as the sparse product ``Rᵀ[rows] @ R``;
    chunks are further split so that the upper bound ``min(g_i, I)`` on their stored
    entries keeps the estimated working memory under ``chunk_memory_mb``.  Peak memory is
    therefore O(nnz(R) + I·K) plus one chunk, never O(I²).

    Zero cases: an item with no interactions, or whose users interacted with nothing
    else (``g_i − G_ii = 0``), has no neighbours.  Slots beyond an item's number of
    neighbours are padded with the item's own id and weight 0, so they contribute
    nothing to the loss and no NaN/Inf is ever produced.

    Args:
        train: the [U, I] training interactions (non-zeros count as one interaction).
        num_neighbors: K, neighbours kept per item (>= 0).
        chunk_size: maximum number of G rows computed at once (>= 1).
        chunk_memory_mb: approximate working-memory budget of one chunk in MiB (> 0).

    Returns:
        ``(neighbors [I, K] int64, weights [I, K] float32)``.
    """
    K = _check_int("num_neighbors", num_neighbors, minimum=0)
    chunk_size = _check_int("chunk_size", chunk_size, minimum=1)
    chunk_memory_mb = _check_real("chunk_memory_mb", chunk_memory_mb, positive=True)
    R = _binary_csr(train)
    I = R.shape[1]
    neighbors = np.repeat(np.arange(I, dtype=np.int64)[:, None], K, axis=1)
    weights = np.zeros((I, K), dtype=np.float32)
    if K == 0 or R.nnz == 0:
        return neighbors, weights

    RT = R.T.tocsr()                                           # [I, U]
    d_u = np.diff(R.indptr).astype(np.float64)
    d_i = np.diff(RT.indptr).astype(np.float64)                # = G_ii
    g = RT @ d_u                                               # g_i = Σ_u R_ui d_u = Σ_k G_ik
    denom = g - d_i                                            # g_i − G_ii
    sqrt_g = np.sqrt(g)
    inv_sqrt_g = np.zeros_like(g)
    inv_sqrt_g[g > 0] = 1.0 / sqrt_g[g > 0]
    row_coef = np.zeros_like(g)                                # sqrt(g_i) / (g_i − G_ii)
    ok = denom > 0
    row_coef[ok] = sqrt_g[ok] / denom[ok]

    row_bound = np.minimum(g, I).astype(np.int64)              # nnz(G[i]) <= min(g_i, I)
    max_entries = max(1, int(chunk_memory_mb * 2**20 / _BYTES_PER_ENTRY))
    for start, end in _plan_chunks(row_bound, chunk_size, max_entries):
        _topk_chunk(RT[start:end] @ R, start, K, row_coef, inv_sqrt_g, neighbors, weights)
    return neighbors, weights


def _topk_chunk_numpy(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    start: int,
    K: int,
    row_coef: np.ndarray,
    inv_sqrt_g: np.ndarray,
    neighbors: np.ndarray,
    weights: np.ndarray,
) -> None:
    """Vectorized NumPy top-K of ω for G rows ``start ..`` given as CSR arrays (a G-chunk);
    writes into ``neighbors`` / ``weights`` in place.  Fallback of :func:`_topk_chunk_numba`."""
    n_rows = indptr.shape[0] - 1
    rows = np.repeat(np.arange(n_rows, dtype=np.int32), np.diff(indptr))
    keep = indices != rows + start
    rows, cols = rows[keep], indices[keep]
    w = data[keep].astype(np.float64)
    w *= row_coef[rows + start]
    w *= inv_sqrt_g[cols]
    keep = w > 0
    if not keep.all():
        rows, cols, w = rows[keep], cols[keep], w[keep]
    if rows.size == 0:
        return
    order = np.lexsort((cols, -w, rows))                       # by row, then ω desc, then j asc
    rows, cols, w = rows[order], cols[order], w[order]
    counts = np.bincount(rows, minlength=n_rows)
    first = np.cumsum(counts) - counts
    rank = np.arange(rows.shape[0]) - np.repeat(first, counts)
    top = rank < K
    r = rows[top].astype(np.int64) + start
    neighbors[r, rank[top]] = cols[top]
    weights[r, rank[top]] = w[top]


def _topk_chunk_python(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    start: int,
    K: int,
    row_coef: np.ndarray,
    inv_sqrt_g: np.ndarray,
    neighbors: np.ndarray,
    weights: np.ndarray,
) -> None:
    """Per-row top-K of ω by insertion into a sorted buffer (ω desc, then j asc); compiled
    with numba as :func:`_topk_chunk_numba`.  Same contract as :func:`_topk_chunk_numpy`."""
    buf_w = np.empty(K, dtype=np.float64)
    buf_j = np.empty(K, dtype=np.int64)
    for r in range(indptr.shape[0] - 1):
        i = start + r
        coef = row_coef[i]
        if coef == 0.0:
            continue
        cnt = 0
        for p in range(indptr[r], indptr[r + 1]):
            j = indices[p]
            if j == i:
                continue
            w = data[p] * coef * inv_sqrt_g[j]
            if w <= 0.0:
                continue
            if cnt == K:
                if w < buf_w[K - 1] or (w == buf_w[K - 1] and j > buf_j[K - 1]):
                    continue
                pos = K - 1
            else:
                pos = cnt
                cnt += 1
            while pos > 0 and (buf_w[pos - 1] < w or (buf_w[pos - 1] == w and buf_j[pos - 1] > j)):
                buf_w[pos] = buf_w[pos - 1]
                buf_j[pos] = buf_j[pos - 1]
                pos -= 1
            buf_w[pos] = w
            buf_j[pos] = j
        for k in range(cnt):
            neighbors[i, k] = buf_j[k]
            weights[i, k] = buf_w[k]


try:  # numba is a dependency, but keep a working (slower) path if it cannot load
    import numba

    _topk_chunk_numba = numba.njit(cache=True, nogil=True)(_topk_chunk_python)
except Exception:  # pragma: no cover - exercised only without a working numba
    _topk_chunk_numba = None


def _topk_chunk(
    C: sp.csr_matrix,
    start: int,
    K: int,
    row_coef: np.ndarray,
    inv_sqrt_g: np.ndarray,
    neighbors: np.ndarray,
    weights: np.ndarray,
) -> None:
    """Write the top-K of rows ``start .. start + C.shape[0]`` of ω (from the G-chunk ``C``)
    into ``neighbors`` / ``weights`` in place (numba kernel, NumPy fallback)."""
    C = C.tocsr()
    impl = _topk_chunk_numba if _topk_chunk_numba is not None else _topk_chunk_numpy
    impl(C.indptr, C.indices, C.data, start, K, row_coef, inv_sqrt_g, neighbors, weights)


# --------------------------------------------------------------------------- the model
class UltraGCN(RecommenderModel):
    r"""UltraGCN from `"UltraGCN: Ultra Simplification of Graph Convolutional Networks
    for Recommendation" <https://arxiv.org/abs/2110.15114>`_ (Mao et al., CIKM 2021).

    UltraGCN trains plain user/item embeddings (scores ``e_u · e_i``), skipping message
    passing; the infinite-layer limit of LightGCN-style propagation,
    ``e_u = Σ_{i∈N(u)} β_{u,i} e_i``, is imposed through constraint losses instead:

    .. math::
        \beta_{u,i} = \frac{1}{d_u}\sqrt{\frac{d_u+1}{d_i+1}}, \qquad
        \omega_{i,j} = \frac{G_{i,j}}{g_i - G_{i,i}}\sqrt{\frac{g_i}{g_j}},\quad
        G = R^\top R,\; g_i = \sum_k G_{i,k}

    Paper objective: ``L = L_O + λ L_C + γ L_I`` with ``ℓ⁺(x) = −log σ(x)``,
    ``ℓ⁻(x) = −log σ(−x)``:

    * ``L_O = Σ_{(u,i)∈N⁺} ℓ⁺(e_u·e_i) + Σ_{(u,j)∈N⁻} ℓ⁻(e_u·e_j)``  (main BCE loss),
    * ``L_C = Σ_{(u,i)∈N⁺} β_{u,i} ℓ⁺(e_u·e_i) + Σ_{(u,j)∈N⁻} β_{u,j} ℓ⁻(e_u·e_j)``
      (user–item constraint loss),
    * ``L_I = Σ_{(u,i)∈N⁺} Σ_{j∈S(i)} ω_{i,j} ℓ⁺(e_u·e_j)``, S(i) = top-K items by ω
      (item–item constraint loss).

    **Loss implemented** (per batch of B positives with n sampled negatives each,
    summed over the batch as in the authors' code)::

        L_O  = Σ_b [ w1·ℓ⁺(s_b) + negative_weight · w3 · mean_k ℓ⁻(s_bk) ]
        L_C  = Σ_b [ w2·β_{u,i}·ℓ⁺(s_b) + negative_weight · w4 · mean_k β_{u,j_k}·ℓ⁻(s_bk) ]
        L_I  = item_item_weight · Σ_b Σ_{j∈S(i_b)} ω_{i_b,j} · ℓ⁺(e_u·e_j)
        norm = norm_weight · ½ (‖E_user‖²_F + ‖E_item‖²_F)     (all embeddings, every step)
        total = L_O + L_C + L_I + norm

    Since L_O and L_C share their BCE terms, positives are effectively weighted by
    ``w1 + w2·β_{u,i}`` and negatives by ``negative_weight·(w3 + w4·β_{u,j})/n``.

    **Mapping of paper symbols to arguments**: the paper's setting is
    ``w1 = w3 = 1`` (weight of L_O) and ``w2 = w4 = λ`` (weight of L_C); separate
    w1..w4 let positives and negatives be weighted differently (the official configs
    do).  The paper sums over all sampled negatives; here they are averaged and scaled
    by ``negative_weight``, so ``negative_weight = n`` reproduces the paper's sum.  The
    paper's γ (weight of L_I) is ``item_item_weight`` (``lambda`` in the official
    code/configs).  The L2 "norm loss" weight is ``norm_weight`` (``gamma`` in the
    official code/configs); note the official code's ``gamma``/``lambda`` are *not* the
    paper's γ/λ, hence the explicit names here.

    Args:
        num_users: number of users U.
        num_items: number of items I.
        embedding_dim: embedding size d.
        w1: weight of the positive term of L_O.
        w2: weight of the positive term of L_C (paper λ).
        w3: weight of the negative term of L_O.
        w4: weight of the negative term of L_C (paper λ).
        negative_weight: multiplier of the (averaged) negative terms.
        norm_weight: weight of the L2 norm loss ½‖θ‖² (official code ``gamma``).
        item_item_weight: weight of L_I (paper γ; official code ``lambda``); the default
            2.75 is the official Amazon-Book value, the other defaults are Gowalla's.
        num_neighbors: K, item–item neighbours per item (0 disables L_I's neighbours).
        initial_weight: standard deviation of the normal embedding initialization.
        chunk_size: rows of G = RᵀR computed at once in :meth:`prepare`.
        chunk_memory_mb: approximate memory budget (MiB) of one such chunk.
        negative_sampling: which items the trainer draws the negatives from.
            ``"exclude_positives"`` (default): uniform over the items the user has no
            training interaction with (official config ``sampling_sift_pos = yes``).
            ``"all_items"``: uniform over all I items, so a user's own training items can
            come up as negatives, as in the authors' configs for gowalla, yelp2018,
            amazon-book and ml-1m (``sampling_sift_pos = no``); every preset uses it.
        init: ``"normal"`` (default, the paper's): both tables from ``N(0, initial_weight²)``.
            ``"svd"`` (a warm start, not in the paper): :meth:`prepare` sets users
            ``c·P Σ^{1/2}`` and items ``c·Q Σ^{1/2}`` from the rank-``d`` truncated SVD of
            ``D_u^{-1/2} R D_i^{-1/2}``, ``c`` giving the rows the mean norm of the normal draw's
            rows, so scores start from a spectral low-pass of the interactions instead of noise
            (:mod:`graphkit.models.svd_start`).  A loaded or warm-started model keeps its weights.

    Buffers (filled by :meth:`prepare`): ``beta_user [U]``, ``beta_item [I]``
    (β_{u,i} = beta_user[u]·beta_item[i]), ``item_neighbors [I, K] int64``,
    ``item_neighbor_weights [I, K] float32`` and ``prepared`` (bool scalar).

    Presets (``presets[dataset] = {"model": {...kwargs...}, "train": {"lr", "batch_size",
    "num_negatives", "epochs", "eval_every", "patience"}}``) hold the authors' published settings.
    """

    # All numbers below come from the authors' official configuration files
    # (github.com/reczoo/RecZoo, formerly xue-pai/UltraGCN: gowalla_config.ini,
    # yelp2018_config.ini, amazon_config.ini, ml-1m_config.ini, key names in brackets).
    # Model: embedding_dim [embedding_dim], num_neighbors [ii_neighbor_num],
    # initial_weight [initial_weight], w1..w4 [w1..w4], negative_weight [negative_weight],
    # norm_weight [gamma, "weight of l2 normalization"], item_item_weight [lambda,
    # "weight of L_I"].  Train: lr [learning_rate], batch_size [batch_size],
    # num_negatives [negative_num], epochs [max_epoch = 2000, an upper bound: the
    # authors stop early after early_stop_epoch evaluations without Recall@20 gain:
    # gowalla 150, yelp2018 15, amazon-book 15, ml-1m 50].
    # eval_every: NOT from the configs; the official loop evaluates every 5 epochs
    # during the first 50 epochs and every epoch afterwards; 5 is our cheaper choice.
    # patience (in evaluations): the authors' early_stop_epoch expressed in our
    # eval_every=5 units, rounded: gowalla 150/5 = 30, yelp2018/amazon 15/5 = 3, ml-1m 50/5 = 10.
    # Negatives [sampling_sift_pos]: all four configs say "no", i.e. uniform over all items
    # with the user's training items not excluded: negative_sampling = "all_items" (until
    # that option existed graphkit trained every preset with positives excluded).  Adam.
    # Every value above was checked against xue-pai/UltraGCN's *_config.ini (2026-12-06), not
    # against the paper's tables; the paper's setup uses embedding size 64 as far as we
    # recall, the official ML-1M config 128.
    #: ``graphkit.tune``'s default ranges, around the values the authors' configs use (negative
    #: weight 200-500, L_I weight 5e-4-2.75, norm weight 1e-4, 200-1500 negatives).
    search_space: ClassVar[Dict[str, Tuple[Any, ...]]] = {
        "lr": ("log", 1e-4, 1e-2), "negative_weight": ("log", 10.0, 1000.0), "item_item_weight": ("log", 1e-4, 10.0),
        "norm_weight": ("log", 1e-5, 1e-2), "num_negatives": ("choice", [50, 100, 200, 500, 800])}

    presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        "gowalla": {
            "model": {"embedding_dim": 64, "w1": 1e-6, "w2": 1.0, "w3": 1e-6, "w4": 1.0,
                      "negative_weight": 300.0, "norm_weight": 1e-4, "item_item_weight": 5e-4,
                      "num_neighbors": 10, "initial_weight": 1e-4,
                      "negative_sampling": "all_items"},
            "train": {"lr": 1e-4, "batch_size": 512, "num_negatives": 1500, "epochs": 2000, "eval_every": 5, "patience": 30},
        },
        "yelp2018": {
            "model": {"embedding_dim": 64, "w1": 1e-8, "w2": 1.0, "w3": 1e-8, "w4": 1.0,
                      "negative_weight": 300.0, "norm_weight": 1e-4, "item_item_weight": 5e-4,
                      "num_neighbors": 10, "initial_weight": 1e-4,
                      "negative_sampling": "all_items"},
            "train": {"lr": 1e-3, "batch_size": 1024, "num_negatives": 800, "epochs": 2000, "eval_every": 5, "patience": 3},
        },
        "amazon-book": {
            # note w3 = 1, w4 = 1e-8 here (negatives barely β-weighted), unlike the others
            "model": {"embedding_dim": 64, "w1": 1e-8, "w2": 1.0, "w3": 1.0, "w4": 1e-8,
                      "negative_weight": 500.0, "norm_weight": 1e-4, "item_item_weight": 2.75,
                      "num_neighbors": 10, "initial_weight": 1e-4,
                      "negative_sampling": "all_items"},
            "train": {"lr": 1e-3, "batch_size": 1024, "num_negatives": 500, "epochs": 2000, "eval_every": 5, "patience": 3},
        },
        "ml-1m": {
            # embedding_dim 128 and initial_weight 1e-3 as in the official ml-1m config
            "model": {"embedding_dim": 128, "w1": 1e-7, "w2": 1.0, "w3": 1e-7, "w4": 1.0,
                      "negative_weight": 200.0, "norm_weight": 1e-4, "item_item_weight": 1e-3,
                      "num_neighbors": 10, "initial_weight": 1e-3,
                      "negative_sampling": "all_items"},
            "train": {"lr": 1e-3, "batch_size": 1024, "num_negatives": 200, "epochs": 2000, "eval_every": 5, "patience": 10},
        },
    }
    #: ``preset="fast"``: the paper's preset updated by a recipe chosen for time to quality on the
    #: *validation* split (benchmarks/tune_fast_recipe.py, tuning seed 7, 2 CPU threads, 300 s
    #: budget, ml-1m; candidates and curves: docs/models/ultragcn.md).  Round 1: 4x the batch
    #: (4,096) with the learning rate scaled with it (4e-3) and 100 negatives per positive instead
    #: of 200.  Rounds 2-3: the SVD warm start (``init="svd"``) at ten times the preset's init norm
    #: (``initial_weight`` 1e-2): validation recall@20 0.2319 in 300 s, against 0.1898 for round 1's
    #: recipe rerun in the same invocation, 0.1734 for the SVD at the preset's norm and (round 3)
    #: 0.2025 for the larger norm without the SVD.  Chosen on ml-1m only, so it is offered for ml-1m only.
    fast_presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        "ml-1m": {"model": {"init": "svd", "initial_weight": 1e-2},
                  "train": {"batch_size": 4096, "lr": 4e-3, "num_negatives": 100}},
    }
    # Generic defaults (not from the paper): moderate negatives, Adam.
    default_train: ClassVar[Dict[str, Any]] = {
        "lr": 1e-3, "batch_size": 1024, "num_negatives": 100, "epochs": 200, "eval_every": 5, "optimizer": "adam",
    }

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 64,
        w1: float = 1e-6,
        w2: float = 1.0,
        w3: float = 1e-6,
        w4: float = 1.0,
        negative_weight: float = 10.0,
        norm_weight: float = 1e-4,
        item_item_weight: float = 2.75,
        num_neighbors: int = 10,
        initial_weight: float = 1e-4,
        chunk_size: int = 1024,
        chunk_memory_mb: float = 256.0,
        negative_sampling: str = "exclude_positives",
        init: str = "normal",
    ) -> None:
        super().__init__(num_users, num_items)
        self.embedding_dim = _check_int("embedding_dim", embedding_dim, minimum=1)
        self.w1 = _check_real("w1", w1)
        self.w2 = _check_real("w2", w2)
        self.w3 = _check_real("w3", w3)
        self.w4 = _check_real("w4", w4)
        self.negative_weight = _check_real("negative_weight", negative_weight)
        self.norm_weight = _check_real("norm_weight", norm_weight)
        self.item_item_weight = _check_real("item_item_weight", item_item_weight)
        self.num_neighbors = _check_int("num_neighbors", num_neighbors, minimum=0)
        self.initial_weight = _check_real("initial_weight", initial_weight, positive=True)
        self.chunk_size = _check_int("chunk_size", chunk_size, minimum=1)
        self.chunk_memory_mb = _check_real("chunk_memory_mb", chunk_memory_mb, positive=True)
        if negative_sampling not in NEGATIVE_SAMPLING:
            raise ConfigError(f"negative_sampling must be one of {', '.join(map(repr, NEGATIVE_SAMPLING))}, "
                              f"got {negative_sampling!r}")
        self.negative_sampling = str(negative_sampling)
        if init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
        self.init = str(init)

        self.user_embedding = nn.Embedding(self.num_users, self.embedding_dim)
        self.item_embedding = nn.Embedding(self.num_items, self.embedding_dim)
        # Pre-allocated at full size so a state_dict loads into an unprepared model.
        self.register_buffer("beta_user", torch.zeros(self.num_users))
        self.register_buffer("beta_item", torch.zeros(self.num_items))
        self.register_buffer("item_neighbors",
                             torch.arange(self.num_items).unsqueeze(1).repeat(1, self.num_neighbors))
        self.register_buffer("item_neighbor_weights", torch.zeros(self.num_items, self.num_neighbors))
        self.register_buffer("prepared", torch.tensor(False))
        self._ready = False          # host-side cache of `prepared` (avoids a device sync per step)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw both embedding tables from N(0, initial_weight²) (prepared buffers are kept;
        with ``init="svd"`` the next :meth:`prepare` replaces the draw by the SVD start)."""
        nn.init.normal_(self.user_embedding.weight, std=self.initial_weight)
        nn.init.normal_(self.item_embedding.weight, std=self.initial_weight)
        self.fresh_weights = True

    def hparams(self) -> Dict[str, Any]:
        """The constructor arguments of this instance, without ``negative_sampling`` when it is
        the default ``"exclude_positives"`` and without ``init`` when it is ``"normal"`` (the only
        behaviours before the options existed): run records and resumable checkpoints written
        earlier then still match (the trainer refuses to resume when the hyper-parameters differ)."""
        out = super().hparams()
        if out.get("negative_sampling") == "exclude_positives":
            del out["negative_sampling"]
        if out.get("init") == "normal":
            del out["init"]
        return out

    # ------------------------------------------------------------------ data-dependent state
    def prepare(self, train: Optional[sp.csr_matrix], graph: Optional[Graph] = None) -> None:
        """Compute β and the item–item neighbours from the training interactions.

        Args:
            train: the [U, I] training matrix (non-zeros are interactions). When None,
                ``graph.user_item_matrix()`` is used.
            graph: the bipartite training :class:`~graphkit.Graph` (only used when
                ``train`` is None; UltraGCN needs no propagation matrix).

        Raises:
            ConfigError: when the matrix shape is not ``(num_users, num_items)``.
        """
        given = train is not None
        if train is None:
            if graph is None:
                raise ConfigError("prepare() needs the training matrix or the training graph, got neither")
            train = graph.user_item_matrix()
        R = _binary_csr(train)
        if R.shape != (self.num_users, self.num_items):
            raise ConfigError(
                f"train has shape {R.shape}, expected (num_users, num_items) = ({self.num_users}, {self.num_items})"
            )
        beta_user, beta_item = degree_weights(R)
        neighbors, weights = item_item_neighbors(
            R, self.num_neighbors, chunk_size=self.chunk_size, chunk_memory_mb=self.chunk_memory_mb
        )
        with torch.no_grad():
            self.beta_user.copy_(torch.from_numpy(beta_user))
            self.beta_item.copy_(torch.from_numpy(beta_item))
            self.item_neighbors.copy_(torch.from_numpy(neighbors))
            self.item_neighbor_weights.copy_(torch.from_numpy(weights))
            self.prepared.fill_(True)
        self._ready = True
        self._train_nnz = int(R.nnz)  # positives per epoch, for fold_in_users' default L2 weight
        if self.init == "svd" and given and self.fresh_weights:
            self.svd_warm_start(R)

    @torch.no_grad()
    def svd_warm_start(self, train: sp.csr_matrix, seed: int = 0) -> None:
        """Set both embedding tables from the truncated SVD of the normalised interactions
        (``init="svd"``; :func:`graphkit.models.svd_start.svd_start`), rows scaled to the mean
        norm of ``N(0, initial_weight²)`` rows.

        Args:
            train: the ``[U, I]`` training matrix.
            seed: seed of the SVD solver's start vector (the result is deterministic).
        """
        users, items = svd_start(train, self.embedding_dim, self.initial_weight * math.sqrt(self.embedding_dim),
                                 seed=seed, shape=(self.num_users, self.num_items))
        for table, rows in ((self.user_embedding.weight, users), (self.item_embedding.weight, items)):
            table.copy_(torch.from_numpy(rows).to(table.device, table.dtype))
        self.keep_weights()

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._ready = False          # re-read the loaded `prepared` flag on the next loss

    # ------------------------------------------------------------------ losses
    def loss_terms(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Dict[str, Tensor]:
        """The weighted loss components of one batch (see the class docstring for formulas).

        Args:
            users: user ids, int64 [B].
            pos_items: one positive item per user, int64 [B].
            neg_items: sampled negatives, int64 [B, n] ([B] is read as n = 1).

        Returns:
            ``{"L_O", "L_C", "L_I", "norm", "total"}``, scalar tensors; every entry is
            that term's weighted contribution, and ``total`` is their sum.

        Raises:
            TrainingError: when :meth:`prepare` has not been called.
            ConfigError: on inconsistent batch shapes.
        """
        users, pos_items, neg_items = self._check_batch(users, pos_items, neg_items)
        u = self.user_embedding(users)                                   # [B, d]
        pos_scores = (u * self.item_embedding(pos_items)).sum(-1)        # [B]
        neg_scores = self.negative_scores(u, neg_items)                  # [B, n]
        pos_l = F.softplus(-pos_scores)                                  # −log σ(s)
        neg_l = F.softplus(neg_scores)                                   # −log σ(−s)

        beta_u = self.beta_user[users]
        beta_pos = beta_u * self.beta_item[pos_items]                    # β_{u,i}
        beta_neg = beta_u.unsqueeze(1) * self.beta_item[neg_items]       # β_{u,j}
        nw = self.negative_weight
        L_O = self.w1 * pos_l.sum() + nw * self.w3 * neg_l.mean(1).sum()
        L_C = self.w2 * (beta_pos * pos_l).sum() + nw * self.w4 * (beta_neg * neg_l).mean(1).sum()
        L_I = self.item_item_weight * self.item_item_loss(u, pos_items)
        norm = self.norm_weight * self.norm_loss()
        return {"L_O": L_O, "L_C": L_C, "L_I": L_I, "norm": norm, "total": L_O + L_C + L_I + norm}

    #: Score negatives through one dense ``[B, I]`` matmul when ``n * DENSE_NEGATIVES_FACTOR >=
    #: num_items``, else by gathering their embeddings.  Measured (1 CPU thread, forward +
    #: backward of the negative term): ml-1m preset 4.8x faster dense, gowalla 2.0x,
    #: yelp2018 1.25x; amazon-book (n / I = 0.005) 2.4x slower dense, so it gathers.
    DENSE_NEGATIVES_FACTOR: ClassVar[int] = 48

    def negative_scores(self, user_emb: Tensor, neg_items: Tensor) -> Tensor:
        """Scores ``e_u · e_j`` of the sampled negatives, ``[B, n]``.

        Many negatives per user (UltraGCN samples hundreds) make the gathered ``[B, n, d]``
        embedding tensor and its scatter-add backward the cost of a step; when ``n`` is a
        sizeable fraction of the catalogue it is cheaper to score every item with one matmul
        and pick the sampled columns.  Both paths compute the same dot products.

        Args:
            user_emb: the batch's user embeddings [B, d].
            neg_items: sampled negatives, int64 [B, n].
        """
        if neg_items.shape[1] * self.DENSE_NEGATIVES_FACTOR >= self.num_items:
            return (user_emb @ self.item_embedding.weight.t()).gather(1, neg_items)
        return torch.bmm(self.item_embedding(neg_items), user_emb.unsqueeze(-1)).squeeze(-1)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        """The scalar training loss ``L_O + L_C + L_I + norm`` (see :meth:`loss_terms`).

        Args:
            users: user ids, int64 [B].
            pos_items: one positive item per user, int64 [B].
            neg_items: sampled negatives, int64 [B, n].
        """
        return self.loss_terms(users, pos_items, neg_items)["total"]

    def item_item_loss(self, user_emb: Tensor, pos_items: Tensor) -> Tensor:
        """Unweighted ``Σ_b Σ_{j∈S(i_b)} ω_{i_b,j} · (−log σ(e_{u_b}·e_j))``.

        Args:
            user_emb: the batch's user embeddings [B, d].
            pos_items: the batch's positive items [B].
        """
        if self.num_neighbors == 0 or self.item_item_weight == 0.0:
            return user_emb.new_zeros(())
        nbr = self.item_neighbors[pos_items]                              # [B, K]
        omega = self.item_neighbor_weights[pos_items]                     # [B, K]
        scores = torch.bmm(self.item_embedding(nbr), user_emb.unsqueeze(-1)).squeeze(-1)
        return (omega * F.softplus(-scores)).sum()

    def norm_loss(self) -> Tensor:
        """Unweighted ``½ Σ_θ ‖θ‖²`` over all parameters (both full embedding tables)."""
        return 0.5 * sum(p.pow(2).sum() for p in self.parameters())

    def _check_batch(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        if not self._ready:
            self._ready = bool(self.prepared)
        if not self._ready:
            raise TrainingError("UltraGCN.prepare(train, graph) must be called before computing the loss")
        if neg_items.dim() == 1:
            neg_items = neg_items.unsqueeze(1)
        if users.dim() != 1 or pos_items.shape != users.shape or neg_items.dim() != 2 \
                or neg_items.shape[0] != users.shape[0]:
            raise ConfigError(
                f"expected users [B], pos_items [B], neg_items [B, n]; got {tuple(users.shape)}, "
                f"{tuple(pos_items.shape)}, {tuple(neg_items.shape)}"
            )
        return users, pos_items, neg_items

    # ------------------------------------------------------------------ inference
    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Differentiable scores ``e_u · e_i`` of aligned (user, item) pairs [B].

        Args:
            users: user ids, int64 ``[B]``.
            items: item ids, int64 ``[B]``.
        """
        return (self.user_embedding(users) * self.item_embedding(items)).sum(-1)

    @torch.no_grad()
    def embeddings(self) -> Tuple[Tensor, Tensor]:
        """``(user_embedding.weight, item_embedding.weight)`` (detached, shared storage)."""
        return self.user_embedding.weight.detach(), self.item_embedding.weight.detach()

    def fold_in_users(self, interactions: sp.csr_matrix, iters: int = 100, batch_size: int = 1024,
                      train_interactions: Optional[int] = None, reg: Optional[float] = None) -> Tensor:
        r"""Embeddings of users *not* trained, item embeddings frozen (no refit).

        UltraGCN scores with plain embeddings, so a new user ``u`` is exactly the ``e_u``
        that minimises the model's own loss with every item fixed.  Its terms that involve
        ``e_u`` — the positives' ``L_O + L_C``, the negatives' ``L_O + L_C`` in *expectation*
        over the sampler (each positive draws ``n`` uniform negatives from ``C``: all items or
        the non-positives, per ``negative_sampling``), the item–item term ``L_I`` of its
        positives' neighbours and the L2 norm loss — give, with ``s_j = e_u·e_j``,

        .. math::
            f(e_u) = \sum_j a_j\,\ell^+(s_j) + b_j\,\ell^-(s_j) + \tfrac{r}{2}\lVert e_u\rVert^2,

        .. math::
            a_j = (w_1 + w_2\beta_{u,j})\,[j\in N(u)] + \gamma\sum_{i\in N(u)}\omega_{i,j}[j\in S(i)],\quad
            b_j = [j\in C]\,\frac{d_u\,\nu\,(w_3 + w_4\beta_{u,j})}{|C|},

        with ``ν = negative_weight``, ``β_{u,j} = β_u β_j`` (``β_u`` from the new degree ``d_u``,
        ``β_j`` the trained item factor) and ``r = norm_weight · steps per epoch``: the norm
        loss is added at every training step while a user's terms come once per epoch, so one
        epoch of training weighs them in this ratio.  ``f`` is convex (softplus of linear
        functions plus an L2 term); it is minimised from ``e_u = 0`` by L-BFGS with a
        strong-Wolfe line search, all users of the call at once (their problems are
        independent).  ``iters=100`` was chosen on ml-1m's validation split
        (``benchmarks/bench_fold_in.py``, tuning seed 7) among 20 / 50 / 100, and the epoch
        weighting of the L2 term against 0.1x and 10x of it (docs/recommender.md).

        Args:
            interactions: ``[n, I]`` sparse matrix, the new users' items (non-zeros).
            iters: L-BFGS iterations (at most; it stops earlier at its tolerances).
            batch_size: the training batch size (sets the steps per epoch).
            train_interactions: positives per epoch in training (default: those seen by
                :meth:`prepare`).
            reg: the L2 weight ``r`` itself (overrides the two arguments above).

        Returns:
            ``[n, d]`` tensor on the model's device.  A user without items gets zeros.
        """
        R = _binary_csr(interactions, "interactions")
        if R.shape[1] != self.num_items:
            raise ConfigError(f"interactions must be [n, num_items={self.num_items}], got shape {R.shape}")
        rows_per_call = max(1, (1 << 24) // self.num_items)  # bounds the dense [n, I] weight matrices
        if R.shape[0] > rows_per_call:
            return torch.cat([self.fold_in_users(R[s:s + rows_per_call], iters, batch_size, train_interactions, reg)
                              for s in range(0, R.shape[0], rows_per_call)])
        if not self._ready:
            self._ready = bool(self.prepared)
        if not self._ready:
            raise TrainingError("UltraGCN.prepare(train, graph) must be called before fold_in_users")
        items = self.item_embedding.weight.detach()
        dev, I = items.device, self.num_items
        n = R.shape[0]
        if reg is None:
            nnz = train_interactions if train_interactions is not None else getattr(self, "_train_nnz", batch_size)
            reg = self.norm_weight * max(1.0, float(nnz) / float(batch_size))
        reg = _check_real("reg", reg)
        d_u = np.diff(R.indptr).astype(np.float64)
        beta_u = np.zeros(n)
        beta_u[d_u > 0] = np.sqrt(d_u[d_u > 0] + 1.0) / d_u[d_u > 0]
        dense = torch.from_numpy(R.toarray()).to(dev)                            # [n, I] in {0, 1}
        bu = torch.from_numpy(beta_u).to(dev, torch.float32).unsqueeze(1)        # [n, 1]
        bi = self.beta_item.to(dev, torch.float32).unsqueeze(0)                  # [1, I]
        a = dense * (self.w1 + self.w2 * bu * bi)
        if self.num_neighbors and self.item_item_weight:
            rows = torch.from_numpy(np.repeat(np.arange(n), np.diff(R.indptr))).to(dev)
            cols = torch.from_numpy(R.indices.astype(np.int64)).to(dev)
            nbr = self.item_neighbors[cols]                                      # [nnz, K]
            omega = self.item_neighbor_weights[cols].to(torch.float32)
            a.view(-1).index_add_(0, (rows.unsqueeze(1) * I + nbr).reshape(-1),
                                  self.item_item_weight * omega.reshape(-1))
        pool = torch.ones_like(dense) if self.negative_sampling == "all_items" else 1.0 - dense
        size = pool.sum(1, keepdim=True).clamp_min(1.0)
        du = torch.from_numpy(d_u).to(dev, torch.float32).unsqueeze(1)
        b = pool * du * self.negative_weight * (self.w3 + self.w4 * bu * bi) / size
        x = torch.zeros(n, items.shape[1], device=dev, requires_grad=True)
        if R.nnz == 0:
            return x.detach()
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=int(iters), line_search_fn="strong_wolfe",
                                tolerance_grad=1e-7, tolerance_change=1e-10, history_size=20)

        def closure() -> Tensor:
            opt.zero_grad()
            sc = x @ items.t()
            f = (a * F.softplus(-sc) + b * F.softplus(sc)).sum() + 0.5 * reg * x.pow(2).sum()
            f.backward()
            return f

        with torch.enable_grad():
            opt.step(closure)
        return x.detach()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.num_users}, {self.num_items}, "
                f"embedding_dim={self.embedding_dim}, num_neighbors={self.num_neighbors}, "
                f"negative_sampling={self.negative_sampling!r})")
