"""GraphCL: graph contrastive learning with augmentations (You et al., NeurIPS 2020,
https://arxiv.org/abs/2010.13902).

Two augmented views of every graph of a batch are encoded and mean-pooled, passed through
a projection head ``g`` (Linear-ReLU-Linear), and the normalised temperature-scaled
cross-entropy (NT-Xent, the paper's Eq. 3, with cosine similarity and the positive left
out of the denominator) pulls the two views of a graph together:

.. math::

    \\ell_n = -\\log \\frac{\\exp(\\mathrm{sim}(z_{n,1}, z_{n,2})/\\tau)}
                        {\\sum_{n' \\ne n} \\exp(\\mathrm{sim}(z_{n,1}, z_{n',2})/\\tau)}

Augmentations (ratio 0.2 each), vectorised over the whole batch:

* ``drop_nodes``: each graph loses ``int(n * ratio)`` random nodes (and their edges);
* ``subgraph``: each graph keeps the ``n - int(n * ratio)`` nodes nearest (in hops) to a
  random start node, ties broken at random (the paper grows the subgraph by a random walk
  over neighbours; breadth-first growth with random ties is graphkit's vectorised version);
* ``drop_edges``: ``ratio`` of the edges removed;
* ``mask_nodes``: ``ratio`` of the nodes' inputs replaced by the mask vector.

The defaults (``drop_nodes`` + ``subgraph``, τ = 0.1) are the authors' transfer-learning
setting for molecules.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets.graph_collection import GraphBatch, hop_distances, rank_within, subgraph
from ..exceptions import ConfigError
from ..models.graph_level import global_pool
from .base import STRATEGIES, PretrainStrategy
from .masking import mask_nodes

__all__ = ["GraphCL", "AUGMENTATIONS", "augment"]

AUGMENTATIONS = ("drop_nodes", "subgraph", "drop_edges", "mask_nodes")


def _node_count_to_drop(batch: GraphBatch, ratio: float) -> torch.Tensor:
    n = torch.bincount(batch.batch, minlength=batch.num_graphs)
    return (n.to(torch.float64) * ratio).long()


def augment(batch: GraphBatch, how: str, ratio: float, generator: torch.Generator) -> Tuple[GraphBatch, Any]:
    """``(augmented batch, node mask or None)`` (see the module docstring).

    Args:
        batch: the batch.
        how: one of :data:`AUGMENTATIONS`.
        ratio: the augmentation strength.
        generator: CPU random generator.
    """
    dev = batch.batch.device
    if how == "drop_nodes":
        keys = torch.rand(batch.num_nodes, generator=generator).to(dev)
        drop = rank_within(batch.batch, keys) < _node_count_to_drop(batch, ratio)[batch.batch]
        return subgraph(batch, ~drop), None
    if how == "subgraph":
        keys = torch.rand(batch.num_nodes, generator=generator).to(dev)
        starts = (rank_within(batch.batch, keys) == 0).nonzero().squeeze(1)
        dist = hop_distances(batch, starts, batch.num_nodes).to(torch.float64)
        dist[dist < 0] = float(batch.num_nodes + 1)  # unreachable nodes come last
        n = torch.bincount(batch.batch, minlength=batch.num_graphs)
        keep_n = n - _node_count_to_drop(batch, ratio)
        order_key = dist + torch.rand(batch.num_nodes, generator=generator, dtype=torch.float64).to(dev)
        return subgraph(batch, rank_within(batch.batch, order_key) < keep_n[batch.batch]), None
    if how == "drop_edges":
        keep = torch.rand(batch.edge_index.shape[1], generator=generator).to(dev) >= ratio
        return GraphBatch(batch.x, batch.edge_index[:, keep],
                          None if batch.edge_attr is None else batch.edge_attr[keep], batch.batch, batch.y,
                          batch.node_ptr, batch.graph_ids), None
    if how == "mask_nodes":
        return batch, mask_nodes(batch, ratio, generator) if ratio > 0 else None
    raise ConfigError(f"unknown augmentation {how!r}; choose from {AUGMENTATIONS}")


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """GraphCL's NT-Xent (positive pairs on the diagonal, left out of the denominator).

    Args:
        z1: projections of view 1 ``[B, d]``.
        z2: projections of view 2 ``[B, d]``.
        temperature: τ.
    """
    sim = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).t() / temperature
    pos = sim.diagonal()
    off = sim.masked_fill(torch.eye(len(sim), dtype=torch.bool, device=sim.device), float("-inf"))
    return (torch.logsumexp(off, dim=1) - pos).mean()


class GraphCL(PretrainStrategy):
    """Contrast two augmented views of each graph.

    Args:
        encoder: the encoder to pre-train.
        augmentations: the two views' augmentations (``("drop_nodes", "subgraph")``).
        ratio: augmentation strength (0.2).
        temperature: τ (0.1).
    """

    name = "graphcl"

    def __init__(self, encoder: nn.Module, augmentations: Sequence[str] = ("drop_nodes", "subgraph"),
                 ratio: float = 0.2, temperature: float = 0.1) -> None:
        super().__init__(encoder)
        augs = tuple(augmentations)
        if len(augs) != 2 or any(a not in AUGMENTATIONS for a in augs):
            raise ConfigError(f"augmentations must be two of {AUGMENTATIONS}, got {augmentations!r}")
        if not 0.0 <= float(ratio) < 1.0 or not float(temperature) > 0:
            raise ConfigError(f"ratio must be in [0, 1) and temperature > 0, got {ratio!r}, {temperature!r}")
        self.augmentations, self.ratio, self.temperature = augs, float(ratio), float(temperature)
        d = encoder.emb_dim
        self.projection = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))

    def options(self) -> Dict[str, Any]:
        return {"augmentations": list(self.augmentations), "ratio": self.ratio, "temperature": self.temperature}

    def _view(self, batch: GraphBatch, how: str, generator: torch.Generator) -> torch.Tensor:
        b, mask = augment(batch, how, self.ratio, generator)
        return self.projection(global_pool(self.encoder(b, node_mask=mask), b.batch, b.num_graphs, "mean"))

    def loss(self, batch: Any, generator: torch.Generator) -> Tuple[torch.Tensor, int]:
        if batch.num_graphs < 2:
            return sum(p.sum() for p in self.parameters()) * 0.0, 0
        z1 = self._view(batch, self.augmentations[0], generator)
        z2 = self._view(batch, self.augmentations[1], generator)
        return nt_xent(z1, z2, self.temperature), batch.num_graphs


STRATEGIES[GraphCL.name] = GraphCL
