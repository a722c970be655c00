"""GIN for graph property prediction, with edge features (OGB / Hu et al. variant).

Paper: Xu, Hu, Leskovec and Jegelka, "How Powerful are Graph Neural Networks?", ICLR 2019,
https://arxiv.org/abs/1810.00826; with bond features as in Hu et al., "Strategies for
Pre-training Graph Neural Networks", ICLR 2020 (arXiv 1905.12265) and the OGB molecule
baselines (arXiv 2005.00687).

One layer (``GINConv``), with :math:`e_{uv}` the layer's embedding of the bond features:

.. math::

    h_v' = \\mathrm{MLP}\\Big((1 + \\epsilon)\\, h_v + \\sum_{u \\in N(v)} \\mathrm{ReLU}(h_u + e_{uv})\\Big),
    \\qquad \\mathrm{MLP} = \\mathrm{Linear}(d, 2d) \\to \\mathrm{BN} \\to \\mathrm{ReLU} \\to \\mathrm{Linear}(2d, d)

with a learnable :math:`\\epsilon` (initialised at 0).  This is PyG's ``GINEConv`` with that
MLP (a test checks they agree weight for weight).  The rest of the model (atom encoder,
5 layers of 300, batch norm, dropout 0.5, mean pooling, linear head, optional virtual node)
is :class:`~graphkit.models.graph_level.GraphModel`.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .graph_level import GraphModel, _edge_encoder, edge_embedding

__all__ = ["GINConv", "GIN"]


class GINConv(nn.Module):
    """The GIN layer with edge features (see the module docstring).

    Args:
        emb_dim: input and output width.
        edge_channels: ``None`` for OGB bond codes, ``0`` for no edge features, else their width.
    """

    def __init__(self, emb_dim: int, edge_channels: Optional[int] = None) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.BatchNorm1d(2 * emb_dim), nn.ReLU(),
                                 nn.Linear(2 * emb_dim, emb_dim))
        self.eps = nn.Parameter(torch.zeros(1))
        self.edge_encoder = _edge_encoder(emb_dim, edge_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the MLP, ``eps`` (0) and the bond embeddings."""
        for m in self.mlp:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        nn.init.zeros_(self.eps)
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
        e = edge_embedding(self.edge_encoder, edge_attr, src.numel(), h)
        # index_select, not h[src]: the backward of advanced indexing (index_put_ with accumulate)
        # is ~2x slower on CPU than index_select's (index_add_); measured in bench_graph_epoch.py
        agg = torch.zeros_like(h).index_add_(0, dst, F.relu(h.index_select(0, src) + e))
        return self.mlp((1 + self.eps) * h + agg)


class GIN(GraphModel):
    """GIN graph encoder + mean pooling + linear head, for OGB molecule property prediction.

    Paper: Xu et al., "How Powerful are Graph Neural Networks?", ICLR 2019,
    https://arxiv.org/abs/1810.00826 (edge features and protocol: Hu et al., ICLR 2020).

    Args:
        num_tasks: targets per graph (from the dataset).
        num_layers: GIN layers (5).
        emb_dim: hidden width (300).
        dropout: dropout ratio (0.5).
        pooling: ``"mean"`` (Hu et al., OGB) or ``"sum"``.
        virtual_node: OGB's virtual node (``gin-virtual`` in OGB's tables).
        in_channels: ``None`` for OGB atom codes, else the width of real node features.
        edge_channels: ``None`` for OGB bond codes, ``0`` for none, else their width.
    """

    conv_cls = GINConv
    #: Hu et al. 2020, Sec. 5.1 / OGB molecule example: 5 layers of 300, dropout 0.5, mean
    #: pooling, Adam lr 1e-3, batch 32, 100 epochs.
    presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        name: {"model": {"num_layers": 5, "emb_dim": 300, "dropout": 0.5, "pooling": "mean"},
               "train": {"lr": 1e-3, "batch_size": 32, "epochs": 100}}
        for name in ("ogbg-molbace", "ogbg-molbbbp", "ogbg-molesol", "ogbg-molfreesolv", "ogbg-molhiv",
                     "ogbg-moltox21", "ogbg-molsider", "ogbg-molclintox", "ogbg-moltoxcast", "ogbg-mollipo",
                     "ogbg-molmuv")
    }
