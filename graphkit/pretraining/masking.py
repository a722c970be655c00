"""Attribute masking (Hu et al., "Strategies for Pre-training Graph Neural Networks", ICLR 2020,
https://arxiv.org/abs/1905.12265, Sec. 3.1.2).

In every graph, ``max(1, int(n * mask_rate + 1))``-capped-at-``n`` nodes are drawn
(``mask_rate`` 0.15); their input encoding is replaced by a learned mask vector, and a
linear head predicts each masked atom's type (OGB atom feature 0, 119 classes) from the
encoder's last-layer embedding, trained with cross-entropy:

.. math::

    \\mathcal{L} = -\\frac{1}{|M|} \\sum_{v \\in M} \\log \\mathrm{softmax}(W h_v)_{\\,type(v)}

Differences from the authors' code: the authors overwrite the masked atom's two input
features with a reserved "mask" category; graphkit's atom encoder has 9 OGB features, so
the whole input embedding of a masked node is replaced by one learned vector (the
information hidden is the same: everything about the atom).  Real-valued node features
(non-molecule graphs) are reconstructed with a mean squared error instead.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets.graph_collection import rank_within
from ..exceptions import ConfigError
from ..models.graph_level import ATOM_FEATURE_DIMS
from .base import STRATEGIES, PretrainStrategy

__all__ = ["AttributeMasking", "mask_nodes"]


def mask_nodes(batch: Any, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Bool ``[N]``: ``min(n, int(n * rate + 1))`` random nodes of every graph (Hu et al.'s count).

    Args:
        batch: a :class:`~graphkit.datasets.GraphBatch`.
        rate: the fraction of nodes to mask.
        generator: CPU random generator.
    """
    n = torch.bincount(batch.batch, minlength=batch.num_graphs)
    want = torch.minimum(n, (n.to(torch.float64) * rate + 1).long())
    keys = torch.rand(batch.num_nodes, generator=generator).to(batch.batch.device)
    return rank_within(batch.batch, keys) < want[batch.batch]


class AttributeMasking(PretrainStrategy):
    """Predict masked atoms' types from their context.

    Args:
        encoder: the encoder to pre-train.
        mask_rate: fraction of nodes masked per graph (0.15).
    """

    name = "attr_masking"

    def __init__(self, encoder: nn.Module, mask_rate: float = 0.15) -> None:
        super().__init__(encoder)
        if not 0.0 < float(mask_rate) < 1.0:
            raise ConfigError(f"mask_rate must be in (0, 1), got {mask_rate!r}")
        self.mask_rate = float(mask_rate)
        emb = encoder.emb_dim
        categorical = not hasattr(encoder.node_encoder, "lin")
        out = ATOM_FEATURE_DIMS[0] if categorical else encoder.node_encoder.lin.in_features
        self.categorical = categorical
        self.head = nn.Linear(emb, out)

    def options(self) -> Dict[str, Any]:
        return {"mask_rate": self.mask_rate}

    def loss(self, batch: Any, generator: torch.Generator) -> Tuple[torch.Tensor, int]:
        mask = mask_nodes(batch, self.mask_rate, generator)
        pred = self.head(self.encoder(batch, node_mask=mask)[mask])
        if self.categorical:
            return F.cross_entropy(pred, batch.x[mask, 0]), int(mask.sum())
        return F.mse_loss(pred, batch.x[mask].to(pred.dtype)), int(mask.sum())


STRATEGIES[AttributeMasking.name] = AttributeMasking
