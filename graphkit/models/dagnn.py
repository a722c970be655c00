"""DAGNN (Liu, Gao & Ji, KDD 2020): Deep Adaptive Graph Neural Network."""
from __future__ import annotations

import math
from typing import Any, ClassVar, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError
from ..graph import Graph
from .base import NodeModel
from .gcn import linear, sparse_dropout

__all__ = ["AdaptivePropagation", "DAGNN"]


class AdaptivePropagation(nn.Module):
    r"""DAGNN's parameter-light propagation with adaptive adjustment.

    .. math::
        H_\ell = \hat{A}^\ell Z \;(\ell = 0..K), \quad
        S = [H_0, \dots, H_K] \in \mathbb{R}^{N \times (K+1) \times C}, \quad
        s = \sigma(S q + b) \in \mathbb{R}^{N \times (K+1)}, \quad
        X_{out} = \textstyle\sum_\ell s_{:,\ell} \odot H_\ell

    with :math:`\hat{A} = \tilde{D}^{-1/2}(A + I)\tilde{D}^{-1/2}` (``graph.spmm``, cached CSR).

    Args:
        channels: width C of the propagated representation (the number of classes in DAGNN).
        K: number of propagation steps (``K + 1`` representations, hop 0 included).
        bias: a scalar bias ``b`` inside the sigmoid.  The paper's model equation has none; the
            authors' release uses a ``Linear(C, 1)`` (with bias) for the projection, so it
            is on by default.
        self_loops: propagate with :math:`A + I` (DAGNN) rather than :math:`A`.
    """

    def __init__(self, channels: int, K: int, bias: bool = True, self_loops: bool = True) -> None:
        super().__init__()
        if isinstance(K, bool) or not isinstance(K, int) or K < 0:
            raise ConfigError(f"K must be an int >= 0, got {K!r}")
        self.channels = channels
        self.K = K
        self.self_loops = self_loops
        self.weight = nn.Parameter(torch.empty(channels))  # the projection vector q
        self.bias = nn.Parameter(torch.empty(())) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(C), 1/sqrt(C)) for q and b, as a ``Linear(C, 1)``."""
        bound = 1.0 / math.sqrt(self.channels)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def propagate(self, z: torch.Tensor, graph: Graph) -> torch.Tensor:
        """The stack ``[N, K+1, C]`` of :math:`\\hat{A}^\\ell Z`, hop 0 first.

        Args:
            z: the representation to propagate, ``[N, C]``.
            graph: the graph.
        """
        hops: List[torch.Tensor] = [z]
        h = z
        for _ in range(self.K):
            h = graph.spmm(h, norm="sym", self_loops=self.self_loops)
            hops.append(h)
        return torch.stack(hops, dim=1)

    def scores(self, stack: torch.Tensor) -> torch.Tensor:
        """Retainment scores :math:`\\sigma(S q + b)`, ``[N, K+1]``.

        Args:
            stack: the ``[N, K+1, C]`` output of :meth:`propagate`.
        """
        logits = torch.matmul(stack, self.weight)
        if self.bias is not None:
            logits = logits + self.bias
        return torch.sigmoid(logits)

    def forward(self, z: torch.Tensor, graph: Graph) -> torch.Tensor:
        """:math:`\\sum_\\ell s_{:,\\ell} \\odot H_\\ell`, ``[N, C]``.

        Args:
            z: the representation to propagate, ``[N, C]``.
            graph: the graph.
        """
        stack = self.propagate(z, graph)
        s = self.scores(stack)
        return torch.bmm(s.unsqueeze(1), stack).squeeze(1)  # sum_l s_l * H_l

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, K={self.K})"


class DAGNN(NodeModel):
    r"""Deep Adaptive Graph Neural Network.

    Paper: Meng Liu, Hongyang Gao, Shuiwang Ji, "Towards Deeper Graph Neural Networks",
    KDD 2020, https://arxiv.org/abs/2007.09296.

    DAGNN decouples transformation from propagation: an MLP maps features to class
    logits, which are propagated K hops, and every node weighs its hops with learned
    retainment scores (the model equations of the paper's DAGNN section):

    .. math::
        Z = \mathrm{MLP}(X), \quad
        H_\ell = \hat{A}^\ell Z, \quad
        S = \sigma(H q), \quad
        X_{out} = \mathrm{softmax}\big(\textstyle\sum_{\ell=0}^{K} S_{:,\ell} H_\ell\big)

    with the MLP ``dropout -> Linear -> ReLU -> dropout -> Linear`` and
    :math:`\hat{A} = \tilde{D}^{-1/2}(A + I)\tilde{D}^{-1/2}`.  ``forward`` returns
    log-probabilities (valid logits for the trainer's cross-entropy).

    Args:
        in_channels: input feature width F.
        num_classes: number of classes C.
        hidden_channels: width of the MLP's hidden layer.
        K: propagation depth.
        dropout: dropout before each linear layer.
        proj_bias: scalar bias in the retainment score (see :class:`AdaptivePropagation`).

    Presets (the paper's experimental setup and the authors' scripts): lr 0.01, hidden 64,
    1000 epochs, patience 100, row-normalized features, selection on validation loss; Cora K=10, dropout 0.8,
    weight decay 5e-3; CiteSeer K=10, dropout 0.5, weight decay 0.02; PubMed K=20,
    dropout 0.8, weight decay 5e-3.
    """

    presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        "cora": {"model": {"hidden_channels": 64, "K": 10, "dropout": 0.8}, "train": {"weight_decay": 5e-3}},
        "citeseer": {"model": {"hidden_channels": 64, "K": 10, "dropout": 0.5}, "train": {"weight_decay": 0.02}},
        "pubmed": {"model": {"hidden_channels": 64, "K": 20, "dropout": 0.8}, "train": {"weight_decay": 5e-3}},
    }
    default_train: ClassVar[Dict[str, Any]] = {
        "lr": 0.01, "weight_decay": 5e-3, "epochs": 1000, "patience": 100, "select": "val_loss",
        "normalize_features": True,
    }
    sparse_input: ClassVar[bool] = True

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int = 64,
        K: int = 10,
        dropout: float = 0.5,
        proj_bias: bool = True,
    ) -> None:
        super().__init__(in_channels, num_classes)
        if isinstance(hidden_channels, bool) or not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ConfigError(f"hidden_channels must be an int >= 1, got {hidden_channels!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.hidden_channels = hidden_channels
        self.K = K
        self.dropout = float(dropout)
        self.proj_bias = proj_bias
        self.lin1 = nn.Linear(in_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, num_classes)
        self.prop = AdaptivePropagation(num_classes, K, bias=proj_bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()
        self.prop.reset_parameters()

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The transformation ``Z = MLP(X)`` (class logits before propagation).

        Args:
            x: node features ``[N, F]``, dense or ``torch.sparse_csr``.
        """
        h = sparse_dropout(x, self.dropout, self.training)
        h = F.relu(linear(h, self.lin1))
        h = F.dropout(h, self.dropout, self.training)
        return self.lin2(h)

    def forward(self, x: torch.Tensor, graph: Any,  # type: ignore[override]
                edge_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Log-probabilities ``[N, C]``.

        ``model(x, graph)`` or, PyG style, ``model(x, edge_index[, edge_weight])``: the
        edge_index's graph is built once and cached (:meth:`NodeModel._as_graph`).

        Args:
            x: node features ``[N, F]``, dense or ``torch.sparse_csr``.
            graph: the graph, or a PyG ``edge_index`` ``[2, E]`` over the ``N`` nodes.
            edge_weight: optional weights ``[E]`` of an ``edge_index``'s edges.
        """
        graph = self._as_graph(graph, x.shape[0], edge_weight)
        z = self.mlp(x)
        return F.log_softmax(self.prop(z, graph), dim=-1)

    @torch.no_grad()
    def retainment_scores(self, x: torch.Tensor, graph: Any,
                          edge_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Eval-mode retainment scores ``[N, K+1]`` (how much of each hop every node keeps).

        Args:
            x: node features ``[N, F]``.
            graph: the graph, or a PyG ``edge_index`` ``[2, E]``.
            edge_weight: optional weights ``[E]`` of an ``edge_index``'s edges.
        """
        graph = self._as_graph(graph, x.shape[0], edge_weight)
        was = self.training
        self.eval()
        try:
            return self.prop.scores(self.prop.propagate(self.mlp(x), graph))
        finally:
            self.train(was)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.num_classes}, hidden={self.hidden_channels}, "
                f"K={self.K}, dropout={self.dropout})")
