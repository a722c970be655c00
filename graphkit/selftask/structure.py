"""Structure pretext tasks: NodeProperty, EdgeMask, PairwiseDistance, Distance2Clusters."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.sparse import csgraph
from torch import nn

from .._cluster import kmeans
from ..exceptions import ConfigError
from ..graph import Graph
from ._utils import (
    _cap_inf, _choice_arg, _float_arg, _int_arg, _pair_features, _spectral_embedding, _structure, _zscore,
    shortest_path_lengths,
)
from .base import PretextTask

__all__ = ["NodeProperty", "EdgeMask", "PairwiseDistance", "Distance2Clusters"]


class NodeProperty(PretextTask):
    """Predict each node's degree (paper: "NodeProperty", degree as the local property).

    ``mode="classification"`` (default): the degree ``d`` (undirected, no self-loops) falls
    in bin ``min(floor(log2(max(d, 1))), num_bins - 1)``, i.e. {0,1}, {2,3}, {4..7}, ...;
    cross-entropy on a linear head.  ``mode="regression"``: MSE on the z-scored
    ``log(1 + d)``.

    Attributes (after prepare): ``degree`` int64 [N], ``targets`` (bins int64 [N], or the
    z-scored log-degree float32 [N]).
    """

    name = "node_property"
    group = "structure"

    def __init__(self, mode: str = "classification", num_bins: int = 5) -> None:
        super().__init__()
        self.mode = _choice_arg("mode", mode, ("classification", "regression"))
        self.num_bins = _int_arg("num_bins", num_bins, 2)

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "num_bins": self.num_bins}

    def _prepare(self, graph, x, train_idx, y_train, rng) -> None:
        self.degree = np.asarray(_structure(graph).sum(1)).ravel().astype(np.int64)
        if self.mode == "classification":
            self.targets = np.minimum(np.floor(np.log2(np.maximum(self.degree, 1))), self.num_bins - 1).astype(np.int64)
        else:
            self.targets = _zscore(np.log1p(self.degree.astype(np.float64)), axis=None)

    def head(self, hidden_dim: int, num_classes: int) -> nn.Module:
        return nn.Linear(hidden_dim, self.num_bins if self.mode == "classification" else 1)

    def loss(self, hidden, head):
        self._check_ready(hidden)
        t = self._on("t", self.targets, hidden.device)
        out = head(hidden)
        if self.mode == "classification":
            return F.cross_entropy(out, t)
        return F.mse_loss(out.squeeze(-1), t)


class EdgeMask(PretextTask):
    """Mask a fraction of the edges and classify node pairs as masked edge vs. non-edge.

    ``prepare`` picks ``round(mask_ratio · E_u)`` of the ``E_u`` undirected edges (fixed for
    the run); :meth:`train_graph` returns the graph without them (both directions), so the
    backbone never propagates over a masked edge during training.  Each step pairs the
    masked edges with as many uniformly sampled non-edges of the full graph; the head is a
    linear layer on ``|h_u − h_v|`` with two outputs (cross-entropy).

    Attributes (after prepare): ``masked_edges`` int64 [M, 2] (u < v), ``masked_graph``.
    """

    name = "edge_mask"
    group = "structure"

    def __init__(self, mask_ratio: float = 0.1) -> None:
        super().__init__()
        self.mask_ratio = _float_arg("mask_ratio", mask_ratio, 0.0, 1.0, low_open=True, high_open=True)

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "mask_ratio": self.mask_ratio}

    def _prepare(self, graph, x, train_idx, y_train, rng) -> None:
        n = graph.num_nodes
        a = sp.triu(_structure(graph), k=1).tocoo()
        und = np.stack([a.row, a.col], 1).astype(np.int64)
        if und.shape[0] == 0:
            raise ConfigError("EdgeMask needs a graph with at least one edge")
        m = max(1, int(round(self.mask_ratio * und.shape[0])))
        pick = np.sort(rng.choice(und.shape[0], m, replace=False))
        self.masked_edges = und[pick]
        self._edge_keys = np.sort(np.r_[und[:, 0] * n + und[:, 1], und[:, 1] * n + und[:, 0]])
        masked_keys = np.r_[self.masked_edges[:, 0] * n + self.masked_edges[:, 1],
                            self.masked_edges[:, 1] * n + self.masked_edges[:, 0]]
        row = graph.row.cpu().numpy()
        col = graph.indices.cpu().numpy()
        keep = ~np.isin(row * n + col, masked_keys)
        w = None if graph.edge_weight is None else graph.edge_weight.cpu().numpy()[keep]
        self.masked_graph = Graph.from_coo(row[keep], col[keep], n, w)
        self._graphs: Dict[str, Graph] = {}

    def train_graph(self, graph: Graph) -> Graph:
        if not self.prepared:
            raise ConfigError("EdgeMask: call prepare() before train_graph()")
        if graph.num_nodes != self.num_nodes:
            raise ConfigError(f"EdgeMask was prepared for {self.num_nodes} nodes, got a graph with {graph.num_nodes}")
        key = str(graph.device)
        if key not in self._graphs:
            self._graphs[key] = self.masked_graph.to(graph.device)
        return self._graphs[key]

    def _negatives(self, m: int) -> np.ndarray:
        n = self.num_nodes
        out = np.empty((0, 2), dtype=np.int64)
        for _ in range(100):
            cand = torch.randint(0, n, (2 * m, 2), generator=self._gen).numpy()
            cand = cand[cand[:, 0] != cand[:, 1]]
            key = cand[:, 0] * n + cand[:, 1]
            pos = np.searchsorted(self._edge_keys, key)
            hit = (pos < self._edge_keys.shape[0]) & (self._edge_keys[np.minimum(pos, self._edge_keys.shape[0] - 1)] == key)
            out = np.concatenate([out, cand[~hit]])
            if out.shape[0] >= m:
                return out[:m]
        raise ConfigError("EdgeMask could not sample non-edges: the graph is (nearly) complete")

    def head(self, hidden_dim: int, num_classes: int) -> nn.Module:
        return nn.Linear(hidden_dim, 2)

    def loss(self, hidden, head):
        self._check_ready(hidden)
        pos = self.masked_edges
        neg = self._negatives(pos.shape[0])
        pairs = torch.from_numpy(np.concatenate([pos, neg])).to(hidden.device)
        target = torch.cat([torch.ones(pos.shape[0]), torch.zeros(neg.shape[0])]).long().to(hidden.device)
        return F.cross_entropy(head(_pair_features(hidden, pairs[:, 0], pairs[:, 1])), target)


class PairwiseDistance(PretextTask):
    """Classify the shortest-path distance of node pairs into 1, 2, 3 and >= 4 hops.

    ``prepare`` runs a BFS (``scipy.sparse.csgraph``) from ``num_anchors`` random anchor
    nodes, in chunks of 256 BFS sources, and keeps the class matrix (int8 ``[A, N]``) plus
    per-class position lists (int32), so memory is about ``5 · num_anchors · N`` bytes.
    Unreachable pairs count as ">= 4".  Each step samples ``num_pairs`` (anchor, node)
    pairs, the same number from each non-empty class; the head is a linear layer on
    ``|h_u − h_v|`` with 4 outputs (cross-entropy).

    Attributes (after prepare): ``anchors`` int64 [A], ``classes`` int8 [A, N] with
    0..3 for distance 1, 2, 3, >= 4 and -1 for the anchor itself.
    """

    name = "pairwise_distance"
    group = "structure"
    NUM_CLASSES = 4

    def __init__(self, num_anchors: int = 256, num_pairs: int = 1024) -> None:
        super().__init__()
        self.num_anchors = _int_arg("num_anchors", num_anchors, 1)
        self.num_pairs = _int_arg("num_pairs", num_pairs, 4)

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "num_anchors": self.num_anchors, "num_pairs": self.num_pairs}

    def _prepare(self, graph, x, train_idx, y_train, rng) -> None:
        n = graph.num_nodes
        a = _structure(graph)
        k = min(self.num_anchors, n)
        self.anchors = np.sort(rng.choice(n, k, replace=False)).astype(np.int64)
        self.classes = np.empty((k, n), dtype=np.int8)
        row = 0
        for part, d in shortest_path_lengths(a, self.anchors):
            c = np.full(d.shape, 3, dtype=np.int8)
            fin = np.isfinite(d)
            c[fin] = (np.minimum(d[fin], 4) - 1).astype(np.int8)
            c[d == 0] = -1
            self.classes[row:row + part.shape[0]] = c
            row += part.shape[0]
        flat = self.classes.ravel()
        dtype = np.int32 if flat.size < 2 ** 31 else np.int64
        self._pools = [np.flatnonzero(flat == j).astype(dtype) for j in range(self.NUM_CLASSES)]
        if all(p.size == 0 for p in self._pools):
            raise ConfigError("PairwiseDistance needs a graph with more than one node")

    def head(self, hidden_dim: int, num_classes: int) -> nn.Module:
        return nn.Linear(hidden_dim, self.NUM_CLASSES)

    def loss(self, hidden, head):
        self._check_ready(hidden)
        pools = [(j, p) for j, p in enumerate(self._pools) if p.size]
        per = max(1, self.num_pairs // len(pools))
        n = self.num_nodes
        pos, lab = [], []
        for j, p in pools:
            pos.append(p[self._randint(p.size, per).numpy()])
            lab.append(np.full(per, j))
        pos_np = np.concatenate(pos).astype(np.int64)
        u = torch.from_numpy(self.anchors[pos_np // n]).to(hidden.device)
        v = torch.from_numpy(pos_np % n).to(hidden.device)
        target = torch.from_numpy(np.concatenate(lab)).to(hidden.device)
        return F.cross_entropy(head(_pair_features(hidden, u, v)), target)


class Distance2Clusters(PretextTask):
    """Regress each node's hop distances to the centres of ``num_clusters`` graph clusters.

    Partition (deterministic given ``rng``; a stand-in for the paper's METIS): spectral
    clustering of the largest connected component (LCC) — the top ``num_clusters``
    eigenvectors of ``D^-1/2 (A + I) D^-1/2`` with rows L2-normalised (Ng–Jordan–Weiss), then
    k-means++/Lloyd.  Nodes outside the LCC belong to no cluster (``-1``).  Each cluster's
    centre is its highest-degree node (ties: smallest id).  Targets are the BFS distances
    from every node to every centre; unreachable distances are set to ``cap`` = (largest
    finite distance) + 1.  The loss is the MSE of a linear head on the per-centre z-scored
    targets.

    Attributes (after prepare): ``clusters`` int64 [N], ``centers`` int64 [k],
    ``targets`` float32 [N, k] (hop distances, ``cap`` where unreachable), ``cap``.
    """

    name = "distance2clusters"
    group = "structure"

    def __init__(self, num_clusters: int = 16) -> None:
        super().__init__()
        self.num_clusters = _int_arg("num_clusters", num_clusters, 1)

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "num_clusters": self.num_clusters}

    def _prepare(self, graph, x, train_idx, y_train, rng) -> None:
        n = graph.num_nodes
        a = _structure(graph)
        _, comp = csgraph.connected_components(a, directed=False)
        lcc = np.flatnonzero(comp == np.bincount(comp).argmax())
        k = self.num_clusters
        if lcc.shape[0] < k:
            raise ConfigError(f"num_clusters = {k} exceeds the {lcc.shape[0]} nodes of the largest connected component")
        sub = a[lcc][:, lcc].tocsr()
        lab = np.zeros(lcc.shape[0], dtype=np.int64) if k == 1 else kmeans(_spectral_embedding(sub, k), k, rng)
        self.clusters = np.full(n, -1, dtype=np.int64)
        self.clusters[lcc] = lab
        deg = np.asarray(a.sum(1)).ravel()
        self.centers = np.array([int(np.flatnonzero(self.clusters == j)[np.argmax(deg[self.clusters == j])])
                                 for j in range(k)], dtype=np.int64)
        dist = np.concatenate([d for _, d in shortest_path_lengths(a, self.centers)]).T
        fin = np.isfinite(dist)
        self.cap = float(dist[fin].max()) + 1.0
        self.targets = _cap_inf(dist, self.cap).astype(np.float32)
        self._z = _zscore(self.targets, axis=0)

    def head(self, hidden_dim: int, num_classes: int) -> nn.Module:
        return nn.Linear(hidden_dim, self.num_clusters)

    def loss(self, hidden, head):
        self._check_ready(hidden)
        return F.mse_loss(head(hidden), self._on("z", self._z, hidden.device))


