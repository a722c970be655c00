"""Attribute pretext tasks: AttributeMask, PairwiseAttrSim."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError
from ..graph import _csr_tensor
from ._utils import _float_arg, _int_arg, _pair_features, _row_l2, _zscore
from .base import PretextTask

__all__ = ["AttributeMask", "PairwiseAttrSim"]


def _pca(x: np.ndarray, dim: int, rng: np.random.Generator, power_iters: int = 8) -> np.ndarray:
    """Projections of the centred ``x`` on its top-``dim`` principal axes; each axis' sign is
    chosen so that its largest-magnitude loading is positive.

    Small inputs use an exact dense SVD; larger ones a randomized SVD with ``power_iters``
    power iterations on the implicitly centred matrix (sparse bag-of-words features stay
    sparse).
    """
    n, f = x.shape
    mu = x.mean(0)
    if n * f <= 250_000 or dim >= min(n, f) - 1:
        _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
        comps = vt[:dim]
    else:  # randomized SVD (Halko et al. 2011) with power iterations, on the implicitly centred matrix
        xs = sp.csr_matrix(x) if np.count_nonzero(x) <= 0.2 * x.size else x
        xt = xs.T.tocsr() if sp.issparse(xs) else xs.T

        def mul(v: np.ndarray) -> np.ndarray:   # (x - mu) @ v
            return xs @ v - (mu @ v)[None, :]

        def rmul(u: np.ndarray) -> np.ndarray:  # (x - mu).T @ u
            return xt @ u - np.outer(mu, u.sum(0))

        q = np.linalg.qr(mul(rng.standard_normal((f, min(f, 2 * dim + 10)))))[0]
        for _ in range(power_iters):
            q = np.linalg.qr(mul(np.linalg.qr(rmul(q))[0]))[0]
        _, _, vt = np.linalg.svd(rmul(q).T, full_matrices=False)
        comps = vt[:dim]
    idx = np.abs(comps).argmax(1)
    comps = comps * np.sign(comps[np.arange(dim), idx])[:, None]
    return (x - mu) @ comps.T


class AttributeMask(PretextTask):
    """Mask the features of some unlabelled nodes and reconstruct their PCA-reduced features.

    ``prepare`` picks ``max(1, floor(mask_ratio · U))`` of the ``U`` *unlabelled* nodes
    (training nodes are never masked, as in the paper's code: their features stay visible
    to the classification loss), fixed for the run, and computes the projections of the
    centred features on the top ``pca_dim`` principal axes (exact SVD for small inputs, a
    randomized SVD otherwise).  :meth:`train_features` zeroes the masked nodes' input
    features; the loss is the MSE of a linear head at the masked nodes against the PCA
    targets divided by their overall standard deviation.

    Attributes (after prepare): ``masked_nodes`` int64 [M], ``targets`` float32 [N, pca_dim].
    """

    name = "attribute_mask"
    group = "attribute"

    def __init__(self, mask_ratio: float = 0.1, pca_dim: int = 64) -> None:
        super().__init__()
        self.mask_ratio = _float_arg("mask_ratio", mask_ratio, 0.0, 1.0, low_open=True, high_open=True)
        self.pca_dim = _int_arg("pca_dim", pca_dim, 1)

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "mask_ratio": self.mask_ratio, "pca_dim": self.pca_dim}

    def _prepare(self, graph, x, train_idx, y_train, rng) -> None:
        feats = self._require_x(x)
        n, f = feats.shape
        if self.pca_dim > min(n, f):
            raise ConfigError(f"pca_dim = {self.pca_dim} exceeds min(num_nodes, num_features) = {min(n, f)}")
        self.targets = _pca(feats, self.pca_dim, rng).astype(np.float32)
        std = float(self.targets.std())
        self._scaled = self.targets / (std if std > 0 else 1.0)
        unlabeled = np.flatnonzero(~self.labeled)
        if unlabeled.size == 0:
            raise ConfigError("AttributeMask masks unlabelled nodes, but every node is a training node")
        m = max(1, int(self.mask_ratio * unlabeled.size))
        self.masked_nodes = np.sort(rng.choice(unlabeled, m, replace=False)).astype(np.int64)
        keep = np.ones(n, dtype=np.float32)
        keep[self.masked_nodes] = 0.0
        self._keep = keep

    def train_features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.prepared:
            raise ConfigError("AttributeMask: call prepare() before train_features()")
        if x.shape[0] != self.num_nodes:
            raise ConfigError(f"AttributeMask was prepared for {self.num_nodes} nodes, got x with {x.shape[0]} rows")
        keep = self._on("keep", self._keep, x.device)
        if x.layout == torch.sparse_csr:
            crow = x.crow_indices()
            rows = torch.repeat_interleave(torch.arange(x.shape[0], device=x.device), crow[1:] - crow[:-1])
            values = x.values() * keep.to(x.dtype)[rows]
            return _csr_tensor(crow, x.col_indices(), values, tuple(x.shape))
        return x * keep.to(x.dtype)[:, None]

    def head(self, hidden_dim: int, num_classes: int) -> nn.Module:
        return nn.Linear(hidden_dim, self.pca_dim)

    def loss(self, hidden, head):
        self._check_ready(hidden)
        idx = self._on("idx", self.masked_nodes, hidden.device)
        return F.mse_loss(head(hidden[idx]), self._on("t", self._scaled, hidden.device)[idx])


class PairwiseAttrSim(PretextTask):
    """Regress the cosine similarity of the input features of node pairs.

    For every anchor node (all nodes, or ``max_anchors`` random ones), ``prepare`` keeps
    the ``k`` most similar and the ``k`` least similar other nodes (ties broken at random)
    by cosine similarity of the raw features (computed in chunks).  Each step samples
    ``num_pairs`` of these pairs; the head is a linear layer on ``|h_u − h_v|`` with one
    output, trained by MSE against the z-scored similarities.

    Attributes (after prepare): ``pairs`` int64 [P, 2], ``targets`` float32 [P] (cosine).
    """

    name = "pairwise_attr_sim"
    group = "attribute"

    def __init__(self, k: int = 3, num_pairs: int = 2048, max_anchors: int = 4096) -> None:
        super().__init__()
        self.k = _int_arg("k", k, 1)
        self.num_pairs = _int_arg("num_pairs", num_pairs, 1)
        self.max_anchors = _int_arg("max_anchors", max_anchors, 1)

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "k": self.k, "num_pairs": self.num_pairs, "max_anchors": self.max_anchors}

    def _prepare(self, graph, x, train_idx, y_train, rng) -> None:
        xn = _row_l2(self._require_x(x))
        n = xn.shape[0]
        xs = sp.csr_matrix(xn) if np.count_nonzero(xn) <= 0.1 * xn.size else xn
        xst = xs.T.tocsr() if sp.issparse(xs) else xs.T
        k = self.k
        if 2 * k > n - 1:
            raise ConfigError(f"k = {k} needs at least {2 * k + 1} nodes, the graph has {n}")
        anchors = np.arange(n) if n <= self.max_anchors else np.sort(rng.choice(n, self.max_anchors, replace=False))
        chunk = max(1, (1 << 21) // n)
        pairs, sims = [], []
        for s in range(0, anchors.shape[0], chunk):
            part = anchors[s:s + chunk]
            rows = np.arange(part.shape[0])
            sim = xs[part] @ xst
            sim = sim.toarray() if sp.issparse(sim) else sim
            key = sim + 1e-9 * rng.random(sim.shape)  # random tie-break (binary features tie a lot)
            key[rows, part] = -np.inf
            top = np.argpartition(-key, k - 1, axis=1)[:, :k]
            key[rows, part] = np.inf
            low = np.argpartition(key, k - 1, axis=1)[:, :k]
            chosen = np.concatenate([top, low], 1)
            pairs.append(np.stack([np.repeat(part, 2 * k), chosen.ravel()], 1))
            sims.append(np.take_along_axis(sim, chosen, 1).ravel())
        self.pairs = np.concatenate(pairs).astype(np.int64)
        self.targets = np.concatenate(sims).astype(np.float32)
        self._z = _zscore(self.targets, axis=None)

    def head(self, hidden_dim: int, num_classes: int) -> nn.Module:
        return nn.Linear(hidden_dim, 1)

    def loss(self, hidden, head):
        self._check_ready(hidden)
        pick = self._randint(self.pairs.shape[0], self.num_pairs)
        pairs = self._on("pairs", self.pairs, hidden.device)[pick.to(hidden.device)]
        t = self._on("z", self._z, hidden.device)[pick.to(hidden.device)]
        return F.mse_loss(head(_pair_features(hidden, pairs[:, 0], pairs[:, 1])).squeeze(-1), t)


