"""GCN for graph property prediction, with edge features (the OGB molecule baseline).

Paper: Kipf and Welling, "Semi-Supervised Classification with Graph Convolutional Networks",
ICLR 2017, https://arxiv.org/abs/1609.02907; with bond features and a root term as in the
OGB molecule baselines (Hu et al., "Open Graph Benchmark", NeurIPS 2020, arXiv 2005.00687).

One layer (``MolGCNConv``), with :math:`\\hat d_v = \\deg(v) + 1` and :math:`e_{uv}` the
layer's bond embedding:

.. math::

    h_v' = \\sum_{u \\in N(v)} \\frac{\\mathrm{ReLU}(W h_u + e_{uv})}{\\sqrt{\\hat d_u \\hat d_v}}
           + \\frac{\\mathrm{ReLU}(W h_v + r)}{\\hat d_v}

(:math:`r` a learned root embedding: the self-loop's "bond").  The rest of the model is
:class:`~graphkit.models.graph_level.GraphModel`.  Registered as ``"gcn-graph"`` (``"gcn"``
is the node-classification GCN).
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .gin import GIN
from .graph_level import GraphModel, _edge_encoder, edge_embedding

__all__ = ["MolGCNConv", "GCNGraph"]


class MolGCNConv(nn.Module):
    """The GCN layer with edge features and root embedding (see the module docstring).

    Args:
        emb_dim: input and output width.
        edge_channels: ``None`` for OGB bond codes, ``0`` for no edge features, else their width.
    """

    def __init__(self, emb_dim: int, edge_channels: Optional[int] = None) -> None:
        super().__init__()
        self.linear = nn.Linear(emb_dim, emb_dim)
        self.root_emb = nn.Embedding(1, emb_dim)
        self.edge_encoder = _edge_encoder(emb_dim, edge_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise ``W``, the root embedding and the bond embeddings."""
        self.linear.reset_parameters()
        self.root_emb.reset_parameters()
        if self.edge_encoder is not None:
            self.edge_encoder.reset_parameters()

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: Optional[torch.Tensor]) -> torch.Tensor:
        """The layer's output ``[N, emb_dim]``.

        Args:
            h: node embeddings ``[N, emb_dim]``.
            edge_index: ``[2, E]`` (messages flow from row 0 to row 1).
            edge_attr: edge features ``[E, ...]`` (OGB bond codes) or ``None``.
        """
        src, dst = edge_index
        h = self.linear(h)
        e = edge_embedding(self.edge_encoder, edge_attr, src.numel(), h)
        deg = torch.bincount(src, minlength=h.shape[0]).to(h.dtype) + 1.0
        inv_sqrt = deg.rsqrt()
        norm = (inv_sqrt[src] * inv_sqrt[dst]).unsqueeze(1)
        out = torch.zeros_like(h).index_add_(0, dst, norm * F.relu(h.index_select(0, src) + e))  # see GINConv
        return out + F.relu(h + self.root_emb.weight) / deg.unsqueeze(1)


class GCNGraph(GraphModel):
    """GCN graph encoder + mean pooling + linear head, for OGB molecule property prediction.

    Paper: Kipf and Welling, "Semi-Supervised Classification with Graph Convolutional Networks",
    ICLR 2017, https://arxiv.org/abs/1609.02907 (graph-level variant of the OGB baselines).

    Args:
        num_tasks: targets per graph (from the dataset).
        num_layers: GCN layers (5).
        emb_dim: hidden width (300).
        dropout: dropout ratio (0.5).
        pooling: ``"mean"`` or ``"sum"``.
        virtual_node: OGB's virtual node (``gcn-virtual`` in OGB's tables).
        in_channels: ``None`` for OGB atom codes, else the width of real node features.
        edge_channels: ``None`` for OGB bond codes, ``0`` for none, else their width.
    """

    conv_cls = MolGCNConv
    #: the OGB molecule example's settings (same as GIN's)
    presets: ClassVar[Dict[str, Dict[str, Any]]] = GIN.presets
