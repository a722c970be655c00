"""Context prediction (Hu et al., "Strategies for Pre-training Graph Neural Networks", ICLR 2020,
https://arxiv.org/abs/1905.12265, Sec. 3.1.1).

For a random centre node ``v`` of every graph: the *substructure* is ``v``'s K-hop
neighbourhood (K = the encoder's layers) and the *context* the nodes at ``r1..r2`` hops
(``r1 = K - 1``, ``r2 = r1 + context_size``, ``context_size`` 3).  The main encoder embeds
the substructure and keeps ``v``'s embedding; a separate, smaller context GNN
(``r2 - r1`` layers) embeds the context graph, whose *anchor* nodes (those in both, hops
``r1..K``) are averaged into the context embedding (Hu et al.'s "CBOW" mode).  A logistic
loss separates each centre's own context (positive) from the contexts of
``neg_samples`` other graphs of the batch (negatives):

.. math::

    \\mathcal{L} = -\\log \\sigma(h_v^\\top c_{G}) - \\sum_{G' \\ne G} \\log \\sigma(-h_v^\\top c_{G'})

Graphs whose centre has no context (small molecules: nothing ``r1`` hops away) are left
out of the batch, as in the authors' data transform.  Hop distances come from one
breadth-first search over the whole batch (:func:`~graphkit.datasets.graph_collection.hop_distances`).
Differences from the authors' code: the centre is drawn per batch (not once per dataset
pass, which is the same distribution); negatives are the next ``neg_samples`` graphs of the
batch in a cyclic shift (the authors' shift is the same construction).
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets.graph_collection import hop_distances, rank_within, subgraph
from ..exceptions import ConfigError
from ..models.graph_level import GNNEncoder, global_pool
from .base import STRATEGIES, PretrainStrategy

__all__ = ["ContextPrediction"]


class ContextPrediction(PretrainStrategy):
    """Tell a node's own context ring from other graphs' contexts.

    Args:
        encoder: the encoder to pre-train (its ``num_layers`` is K).
        context_size: ``r2 - r1`` (3).
        neg_samples: negatives per positive (1).
    """

    name = "context_pred"

    def __init__(self, encoder: nn.Module, context_size: int = 3, neg_samples: int = 1) -> None:
        super().__init__(encoder)
        if int(context_size) < 1 or int(neg_samples) < 1:
            raise ConfigError(f"context_size and neg_samples must be >= 1, got {context_size}, {neg_samples}")
        self.k = encoder.num_layers
        self.r1 = self.k - 1
        self.r2 = self.r1 + int(context_size)
        self.neg_samples = int(neg_samples)
        conv_cls = type(encoder.convs[0])
        edge_channels = _edge_channels(encoder)
        in_channels = encoder.node_encoder.lin.in_features if hasattr(encoder.node_encoder, "lin") else None
        self.context_encoder = GNNEncoder(conv_cls, int(context_size), encoder.emb_dim, 0.0, False, in_channels,
                                          edge_channels)

    def options(self) -> Dict[str, Any]:
        return {"context_size": self.r2 - self.r1, "neg_samples": self.neg_samples, "k": self.k}

    def loss(self, batch: Any, generator: torch.Generator) -> Tuple[torch.Tensor, int]:
        dev = batch.batch.device
        keys = torch.rand(batch.num_nodes, generator=generator).to(dev)
        centre_mask = rank_within(batch.batch, keys) == 0  # one random node per non-empty graph
        centres = centre_mask.nonzero().squeeze(1)
        dist = hop_distances(batch, centres, self.r2)
        in_sub = (dist >= 0) & (dist <= self.k)
        in_ctx = (dist >= self.r1) & (dist <= self.r2)
        anchors = in_ctx & (dist <= self.k)
        has_ctx = torch.zeros(batch.num_graphs, dtype=torch.bool, device=dev)
        has_ctx[batch.batch[anchors]] = True
        graphs = has_ctx.nonzero().squeeze(1)
        if len(graphs) < 2:  # no positive/negative pair in this batch
            return sum(p.sum() for p in self.parameters()) * 0.0, 0
        # the substructure (K-hop ball): centre embeddings
        sub = subgraph(batch, in_sub)
        h = self.encoder(sub)
        centre_pos = torch.cumsum(in_sub.long(), 0) - 1
        h_centre = torch.zeros(batch.num_graphs, h.shape[1], device=dev, dtype=h.dtype)
        h_centre[batch.batch[centres]] = h[centre_pos[centres]]
        # the context ring: mean of the anchors' context embeddings
        ctx = subgraph(batch, in_ctx)
        c = self.context_encoder(ctx)
        ctx_anchor = anchors[in_ctx]
        c_graph = global_pool(c[ctx_anchor], ctx.batch[ctx_anchor], batch.num_graphs, "mean")
        hc, cc = h_centre[graphs], c_graph[graphs]
        pos = (hc * cc).sum(1)
        neg = torch.cat([(hc * torch.roll(cc, s, 0)).sum(1) for s in range(1, self.neg_samples + 1)])
        loss = (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
                + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)) * self.neg_samples) / 2
        return loss, len(graphs)


def _edge_channels(encoder: nn.Module) -> Any:
    """The ``edge_channels`` the encoder was built with (``None``: OGB bond codes; 0: none)."""
    enc = getattr(encoder.convs[0], "edge_encoder", None)
    if enc is None:
        return 0
    return enc.lin.in_features if hasattr(enc, "lin") else None


STRATEGIES[ContextPrediction.name] = ContextPrediction
