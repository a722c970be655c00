"""W2PGNN: *when* to pre-train a GNN, answered from the data-generation side.

Implements the feasibility measure of

    Yuxuan Cao, Jiarong Xu, Carl Yang, Jiaan Wang, Yunchao Zhang, Chunping Wang, Lei Chen,
    Yang Yang. "When to Pre-Train Graph Neural Networks? From Data Generation Perspective!"
    KDD 2023. https://arxiv.org/abs/2303.16458

The idea: pre-training helps a downstream task when the downstream graphs could have been
*generated* by the same mechanisms as the pre-training graphs.  Generators are graphons
(symmetric measurable functions ``W: [0, 1]^2 -> [0, 1]``).  W2PGNN

1. splits the pre-training graphs into groups (one group for everything, one per domain,
   or clusters of similar topology) and estimates one graphon per group: the *graphon bases*
   ``B_1 .. B_K``;
2. spans the *generator space* of their convex combinations ``sum_k alpha_k B_k``
   (``alpha = softmax(theta)``);
3. scores feasibility as ``-min_alpha GW(sum_k alpha_k B_k, B_down)``, the (negated)
   Gromov-Wasserstein distance from the downstream graphon ``B_down`` to that space.
   Higher is more feasible.

Everything here is written from the paper's description (no code was copied); the authors'
released code (github.com/caoyxuan/W2PGNN) was read to match the defaults, and
docs/w2pgnn.md lists every difference.  Pieces:

* :func:`estimate_graphon` -- sort every graph's nodes by degree, zero-pad to the largest
  graph (``align="pad"``, default) or resize to ``[0, 1]``, average, then
  sorting-and-smoothing (``method="sas"``, default: an ``m x m`` histogram with the paper's
  block size ``floor(log2 N) + 1``, total-variation denoised by :func:`tv_denoise`), or a plain
  histogram (``"histogram"``) or USVT (``"usvt"``); every graphon is an ``R x R`` step function.
  One sparse product for the whole set; no loop over edges.
* :func:`entropic_gw` -- entropic Gromov-Wasserstein (square loss) between step graphons
  with uniform measures on their steps: projected mirror descent whose inner problems are
  log-domain Sinkhorn (Peyre, Cuturi & Solomon, ICML 2016), in float64 torch, batched; the
  objective of the fit.
* :func:`exact_gw` -- exact square-loss GW by Frank-Wolfe with exact line search and exact LP
  steps (the algorithm of POT's ``gromov_wasserstein2``): the reported distance.
* :func:`fit_combination` -- the minimum over the simplex, by gradient descent on softmax
  logits (several seeded restarts) or an exhaustive grid for up to 3 bases.
* :func:`feasibility` -- the end-to-end measure; :func:`graphon_bases` (default ``"paper"``:
  integrated + domain + 5 topological clusters), :func:`ego_networks` (node-level tasks: the
  paper uses 2-hop ego-networks), :func:`graph_statistics`, :func:`plot_feasibility`.

The paper defines no normalized score: :class:`FeasibilityResult` carries ``distance`` (by
default the exact GW distance of the fitted combination, >= 0, lower is more feasible),
``score = -distance`` (the paper's zeta), ``fitted_distance`` (the entropic objective) and
``exact_distance``.
"""
from __future__ import annotations

from .measure import FeasibilityResult, ego_networks, feasibility, plot_feasibility
from .graphon import (
    ALIGNMENTS, BASIS_TYPES, CLUSTER_STATISTIC_NAMES, DEFAULT_TV_WEIGHT, METHODS, PAPER_BASES, STATISTIC_NAMES,
    estimate_graphon, graph_statistics, graphon_bases, paper_block_size, tv_denoise,
)
from .gw import CombinationFit, GWResult, entropic_gw, exact_gw, fit_combination

__all__ = [
    "FeasibilityResult",
    "CombinationFit",
    "GWResult",
    "feasibility",
    "estimate_graphon",
    "graphon_bases",
    "graph_statistics",
    "entropic_gw",
    "exact_gw",
    "fit_combination",
    "tv_denoise",
    "paper_block_size",
    "ego_networks",
    "plot_feasibility",
    "STATISTIC_NAMES",
    "CLUSTER_STATISTIC_NAMES",
    "BASIS_TYPES",
    "PAPER_BASES",
    "METHODS",
    "ALIGNMENTS",
    "DEFAULT_TV_WEIGHT",
]
