"""GCN (Kipf & Welling, ICLR 2017): the plain graph convolutional network.

Used as a baseline and as the backbone of other node-classification models.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError
from ..graph import Graph, _csr_tensor, spmm
from .base import NodeModel

__all__ = ["GCNConv", "GCN", "sparse_dropout", "linear"]


def _glorot_(weight: torch.Tensor) -> None:
    """Glorot/Xavier uniform, as PyG's ``glorot`` (bound sqrt(6 / (fan_in + fan_out)))."""
    bound = math.sqrt(6.0 / (weight.size(-2) + weight.size(-1)))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


def _transpose_plan(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(crow_t, col_t, perm)`` such that the CSR transpose of ``x`` has values
    ``x.values()[perm]``; computed once per CSR tensor and kept on it as an attribute."""
    plan = getattr(x, "_graphkit_tplan", None)
    if plan is None:
        crow, col = x.crow_indices(), x.col_indices()
        rows = torch.repeat_interleave(torch.arange(x.shape[0], device=col.device), crow[1:] - crow[:-1])
        perm = torch.argsort(col, stable=True)
        crow_t = torch.zeros(x.shape[1] + 1, dtype=crow.dtype, device=crow.device)
        crow_t[1:] = torch.cumsum(torch.bincount(col, minlength=x.shape[1]), 0)
        plan = (crow_t, rows[perm], perm)
        x._graphkit_tplan = plan  # type: ignore[attr-defined]
    return plan


def sparse_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout for dense or ``torch.sparse_csr`` tensors (for CSR only the stored values
    are dropped, which is the same distribution as dense dropout: zeros stay zero).

    Args:
        x: a dense or ``torch.sparse_csr`` tensor.
        p: drop probability.
        training: apply dropout only when ``True`` (otherwise ``x`` is returned unchanged).
    """
    if not training or p == 0.0:
        return x
    if x.layout == torch.sparse_csr:
        values = F.dropout(x.values(), p, True)
        out = _csr_tensor(x.crow_indices(), x.col_indices(), values, tuple(x.shape))
        out._graphkit_tplan = _transpose_plan(x)  # type: ignore[attr-defined]
        return out
    return F.dropout(x, p, True)


def linear(x: torch.Tensor, lin: nn.Linear) -> torch.Tensor:
    """``lin(x)`` for a dense or ``torch.sparse_csr`` ``x``.

    For CSR input the backward pass multiplies by a transpose built from a cached
    permutation (4x cheaper than letting torch transpose the CSR every step).
    """
    if x.layout == torch.sparse_csr:
        crow_t, col_t, perm = _transpose_plan(x)
        x_t = _csr_tensor(crow_t, col_t, x.values()[perm], (x.shape[1], x.shape[0]))
        out = spmm(x, lin.weight.t(), adj_t=x_t)
        return out if lin.bias is None else out + lin.bias
    return lin(x)


class GCNConv(nn.Module):
    r"""One graph convolution :math:`X' = \hat{A} X W + b` with
    :math:`\hat{A} = \tilde{D}^{-1/2} (A + I) \tilde{D}^{-1/2}`.

    The same operator as ``torch_geometric.nn.GCNConv`` (with ``add_self_loops=True``,
    ``normalize=True``; edge weights are used, self-loops get weight 1), computed with
    graphkit's cached CSR :meth:`Graph.spmm`.  The weight is stored as ``lin.weight``
    ``[out, in]`` like PyG, so ``conv.lin.weight.copy_(pyg_conv.lin.weight)`` transfers it.
    Node ``i`` aggregates over row ``i`` of the adjacency (its out-neighbours); PyG aggregates
    over in-edges, so the two agree on symmetric (undirected) graphs, the usual case.

    Args:
        in_channels: input feature width.
        out_channels: output feature width.
        bias: add a learnable bias after propagation.
        self_loops: add :math:`I` before normalizing (GCN's renormalization trick).
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, self_loops: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.self_loops = self_loops
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weight, zero bias (PyG's initialisation)."""
        _glorot_(self.lin.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, graph: Graph) -> torch.Tensor:
        """``Â (x W) + b``.

        Args:
            x: node features ``[N, in_channels]``, dense or ``torch.sparse_csr``.
            graph: the graph.
        """
        h = linear(x, self.lin)  # X W first: propagation then runs on the narrower matrix
        out = graph.spmm(h, norm="sym", self_loops=self.self_loops)
        if self.bias is not None:
            out = out + self.bias
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


class GCN(NodeModel):
    r"""Graph Convolutional Network.

    Paper: Thomas N. Kipf, Max Welling, "Semi-Supervised Classification with Graph
    Convolutional Networks", ICLR 2017, https://arxiv.org/abs/1609.02907.

    Layer-wise propagation rule (their Eq. 2):

    .. math::
        H^{(l+1)} = \sigma\big(\tilde{D}^{-1/2} \tilde{A} \tilde{D}^{-1/2} H^{(l)} W^{(l)}\big),
        \qquad \tilde{A} = A + I,

    with dropout before every layer and ReLU between layers; the last layer outputs
    class logits.  As in the paper, weight decay applies to the first layer only
    (:meth:`parameter_groups`).

    Args:
        in_channels: input feature width F.
        num_classes: number of classes C.
        hidden_channels: width of the hidden layers.
        num_layers: number of graph convolutions (>= 1).
        dropout: dropout probability before every convolution.

    Attributes:
        last_hidden: the input of the last convolution (after ReLU, before dropout) from
            the latest forward pass, kept with its graph for auxiliary losses; ``None``
            when ``num_layers == 1``.
    """

    presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        name: {
            "model": {"hidden_channels": 16, "num_layers": 2, "dropout": 0.5},
            "train": {"lr": 0.01, "weight_decay": 5e-4, "epochs": 200, "patience": 10, "select": "val_loss",
                      "normalize_features": True},
        }
        for name in ("cora", "citeseer", "pubmed")
    }
    default_train: ClassVar[Dict[str, Any]] = {"lr": 0.01, "weight_decay": 5e-4, "epochs": 200, "patience": 10}
    sparse_input: ClassVar[bool] = True

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int = 16,
        num_layers: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(in_channels, num_classes)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ConfigError(f"num_layers must be an int >= 1, got {num_layers!r}")
        if not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ConfigError(f"hidden_channels must be an int >= 1, got {hidden_channels!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = float(dropout)
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [num_classes]
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.last_hidden: Optional[torch.Tensor] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def parameter_groups(self, weight_decay: float) -> List[Dict[str, Any]]:
        """Weight decay on the first layer only (Kipf & Welling's setup).

        Args:
            weight_decay: the configured weight decay.
        """
        first = list(self.convs[0].parameters())
        rest = [p for conv in self.convs[1:] for p in conv.parameters()]
        groups = [{"params": first, "weight_decay": weight_decay}]
        if rest:
            groups.append({"params": rest, "weight_decay": 0.0})
        return groups

    def embed(self, x: torch.Tensor, graph: Any, edge_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Hidden node representations: the output of all but the last convolution (after ReLU).

        With ``num_layers == 1`` this is ``x`` itself.

        Args:
            x: node features ``[N, F]``.
            graph: the graph, or a PyG ``edge_index`` ``[2, E]`` (as in :meth:`forward`).
            edge_weight: optional weights ``[E]`` of an ``edge_index``'s edges.
        """
        graph = self._as_graph(graph, x.shape[0], edge_weight)
        h = x
        for conv in self.convs[:-1]:
            h = sparse_dropout(h, self.dropout, self.training)
            h = F.relu(conv(h, graph))
        return h

    def forward(self, x: torch.Tensor, graph: Any,  # type: ignore[override]
                edge_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Class logits ``[N, C]``; keeps the hidden representation in ``last_hidden``.

        ``model(x, graph)`` or, PyG style, ``model(x, edge_index[, edge_weight])``: the
        edge_index's graph is built once and cached (:meth:`NodeModel._as_graph`).

        Args:
            x: node features ``[N, F]``, dense or ``torch.sparse_csr``.
            graph: the graph, or a PyG ``edge_index`` ``[2, E]`` over the ``N`` nodes.
            edge_weight: optional weights ``[E]`` of an ``edge_index``'s edges.
        """
        graph = self._as_graph(graph, x.shape[0], edge_weight)
        h = self.embed(x, graph)
        self.last_hidden = h if self.num_layers > 1 else None
        h = sparse_dropout(h, self.dropout, self.training)
        return self.convs[-1](h, graph)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.num_classes}, hidden={self.hidden_channels}, "
                f"layers={self.num_layers}, dropout={self.dropout})")
