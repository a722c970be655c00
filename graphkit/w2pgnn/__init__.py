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

Everything here is written from the paper's description (no code was copied).  Pieces:

* :func:`estimate_graphon` -- sort every graph's nodes by degree, put each graph on
  ``[0, 1]`` (node ``i`` of ``n`` owns ``[i/n, (i+1)/n)``), average and block-average into an
  ``R x R`` step function (the histogram step of sorting-and-smoothing, "SAS"); or
  ``method="usvt"`` (universal singular value thresholding of the aligned average, then
  block averaging).  One sparse product for the whole set; no loop over edges.
* :func:`entropic_gw` -- entropic Gromov-Wasserstein (square loss) between step graphons
  with uniform measures on their steps: projected mirror descent whose inner problems are
  log-domain Sinkhorn (Peyre, Cuturi & Solomon, ICML 2016), in float64 torch, batched.
* :func:`fit_combination` -- the minimum over the simplex, by gradient descent on softmax
  logits (several seeded restarts) or an exhaustive grid for up to 3 bases.
* :func:`feasibility` -- the end-to-end measure; :func:`graphon_bases`, :func:`ego_networks`
  (node-level tasks: the paper uses 2-hop ego-networks), :func:`graph_statistics`,
  :func:`plot_feasibility`.

The paper defines no normalized score: :class:`FeasibilityResult` carries ``distance`` (the
GW discrepancy, >= 0, lower is more feasible) and ``score = -distance`` (the paper's zeta).
"""
from __future__ import annotations

from .measure import FeasibilityResult, ego_networks, feasibility, plot_feasibility
from .graphon import (
    BASIS_TYPES, CLUSTER_STATISTIC_NAMES, STATISTIC_NAMES, estimate_graphon, graph_statistics, graphon_bases,
)
from .gw import CombinationFit, GWResult, entropic_gw, fit_combination

__all__ = [
    "FeasibilityResult",
    "CombinationFit",
    "GWResult",
    "feasibility",
    "estimate_graphon",
    "graphon_bases",
    "graph_statistics",
    "entropic_gw",
    "fit_combination",
    "ego_networks",
    "plot_feasibility",
    "STATISTIC_NAMES",
    "CLUSTER_STATISTIC_NAMES",
    "BASIS_TYPES",
]
