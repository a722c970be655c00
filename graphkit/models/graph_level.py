"""Shared parts of graph-level models (graph property prediction): input encoders, the node
encoder stack with the virtual-node option, pooling and the prediction head.

The architecture is the one of the OGB molecule baselines (Hu et al., "Open Graph
Benchmark", NeurIPS 2020, arXiv 2005.00687, ``examples/graphproppred/mol``), which is Hu
et al., "Strategies for Pre-training Graph Neural Networks", ICLR 2020, arXiv 1905.12265,
on OGB's richer atom/bond features:

.. math::

    h^{(0)}_v = \\sum_c E^{atom}_c[x_{v,c}], \\qquad
    h^{(k)} = \\mathrm{Dropout}(\\mathrm{ReLU}(\\mathrm{BN}(\\mathrm{Conv}^{(k)}(h^{(k-1)}, E, e))))

(no ReLU after the last layer), the graph embedding is the mean (or sum) of the last layer
over each graph's nodes, and a linear layer predicts the ``num_tasks`` targets.  With
``virtual_node=True`` a per-graph virtual node is added to every node's input of each layer
and updated between layers by an MLP of the sum of the layer's inputs (OGB's
``GNN_node_Virtualnode``).  The convolution (GIN, GCN) is what a model file adds.

Aggregations are ``index_add_`` over edge lists (no torch-scatter needed).
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Sequence, Type

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError

__all__ = ["AtomEncoder", "BondEncoder", "GNNEncoder", "GraphModel", "global_pool", "POOLINGS",
           "ATOM_FEATURE_DIMS", "BOND_FEATURE_DIMS"]

#: Category counts of OGB's 9 atom features (``ogb.utils.features.get_atom_feature_dims()``,
#: ogb 1.3.6; a test checks they agree).  Kept here so that building a model does not import ogb.
ATOM_FEATURE_DIMS = (119, 5, 12, 12, 10, 6, 6, 2, 2)
#: Category counts of OGB's 3 bond features (``get_bond_feature_dims()``).
BOND_FEATURE_DIMS = (5, 6, 2)
POOLINGS = ("mean", "sum")


class _CategoricalEncoder(nn.Module):
    """Sum of one embedding table per categorical column (OGB's Atom/BondEncoder), plus a
    learned *mask* vector that replaces the encoding of masked rows (attribute masking,
    Hu et al. 2020)."""

    def __init__(self, dims: Sequence[int], emb_dim: int) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        self.tables = nn.ModuleList(nn.Embedding(d, emb_dim) for d in self.dims)
        self.mask_embedding = nn.Parameter(torch.zeros(emb_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for t in self.tables:
            nn.init.xavier_uniform_(t.weight)
        nn.init.zeros_(self.mask_embedding)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != len(self.dims):
            raise ConfigError(f"{type(self).__name__} expects [rows, {len(self.dims)}] integer codes, got "
                              f"{tuple(x.shape)}")
        out = self.tables[0](x[:, 0])
        for c in range(1, len(self.dims)):
            out = out + self.tables[c](x[:, c])
        if mask is not None:
            out = torch.where(mask.unsqueeze(1), self.mask_embedding.expand_as(out), out)
        return out


class AtomEncoder(_CategoricalEncoder):
    """OGB's atom encoder: the sum of 9 learned embeddings, one per atom feature.

    Args:
        emb_dim: embedding size.
    """

    def __init__(self, emb_dim: int) -> None:
        super().__init__(ATOM_FEATURE_DIMS, emb_dim)


class BondEncoder(_CategoricalEncoder):
    """OGB's bond encoder: the sum of 3 learned embeddings, one per bond feature.

    Args:
        emb_dim: embedding size.
    """

    def __init__(self, emb_dim: int) -> None:
        super().__init__(BOND_FEATURE_DIMS, emb_dim)


class _LinearEncoder(nn.Module):
    """Real-valued features through a linear layer (graphs that are not OGB molecules)."""

    def __init__(self, in_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, emb_dim)
        self.mask_embedding = nn.Parameter(torch.zeros(emb_dim))

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        nn.init.zeros_(self.mask_embedding)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.lin(x.to(self.lin.weight.dtype))
        if mask is not None:
            out = torch.where(mask.unsqueeze(1), self.mask_embedding.expand_as(out), out)
        return out


def make_input_encoder(in_channels: Optional[int], emb_dim: int, kind: str) -> nn.Module:
    """OGB's categorical encoder (``in_channels=None``) or a linear one for real features."""
    if in_channels is None:
        return AtomEncoder(emb_dim) if kind == "atom" else BondEncoder(emb_dim)
    return _LinearEncoder(int(in_channels), emb_dim)


def global_pool(h: torch.Tensor, batch: torch.Tensor, num_graphs: int, how: str = "mean") -> torch.Tensor:
    """Per-graph sum or mean of node rows ``h`` ``[N, d]`` grouped by ``batch`` ``[N]``.

    Args:
        h: node embeddings.
        batch: graph of every node (0..num_graphs-1).
        num_graphs: number of graphs (graphs without nodes pool to 0).
        how: ``"sum"`` or ``"mean"``.
    """
    out = h.new_zeros(num_graphs, h.shape[1]).index_add_(0, batch, h)
    if how == "mean":
        cnt = torch.bincount(batch, minlength=num_graphs).clamp_(min=1).to(h.dtype)
        out = out / cnt.unsqueeze(1)
    return out


class GNNEncoder(nn.Module):
    """Node embeddings of a batch of graphs: input encoder, ``num_layers`` convolutions with
    batch norm, ReLU and dropout, optionally a virtual node (see the module docstring).

    This is the part pre-training trains and fine-tuning loads (``graphkit.pretrain``,
    ``graphkit.fit(..., init_from=...)``).

    Args:
        conv_cls: the convolution class, called as ``conv_cls(emb_dim, edge_channels)``.
        num_layers: message-passing layers (Hu et al., OGB: 5).
        emb_dim: hidden size (300).
        dropout: dropout after every layer (0.5).
        virtual_node: add OGB's virtual node.
        in_channels: ``None`` for OGB atom codes (categorical), else the width of real node features.
        edge_channels: ``None`` for OGB bond codes, ``0`` for no edge features, else their width.
    """

    def __init__(self, conv_cls: Type[nn.Module], num_layers: int = 5, emb_dim: int = 300, dropout: float = 0.5,
                 virtual_node: bool = False, in_channels: Optional[int] = None,
                 edge_channels: Optional[int] = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.num_layers, self.emb_dim, self.dropout = int(num_layers), int(emb_dim), float(dropout)
        self.virtual_node = bool(virtual_node)
        self.node_encoder = make_input_encoder(in_channels, emb_dim, "atom")
        self.convs = nn.ModuleList(conv_cls(emb_dim, edge_channels) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(emb_dim) for _ in range(num_layers))
        if self.virtual_node:
            self.vn_embedding = nn.Embedding(1, emb_dim)
            self.vn_mlps = nn.ModuleList(
                nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.BatchNorm1d(2 * emb_dim), nn.ReLU(),
                              nn.Linear(2 * emb_dim, emb_dim), nn.BatchNorm1d(emb_dim), nn.ReLU())
                for _ in range(num_layers - 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every parameter (the virtual node starts at zero, as in OGB)."""
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        if self.virtual_node:
            nn.init.zeros_(self.vn_embedding.weight)

    def forward(self, batch: Any, node_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Node embeddings ``[N, emb_dim]`` of the last layer.

        Args:
            batch: a :class:`~graphkit.datasets.GraphBatch` (``x``, ``edge_index``, ``edge_attr``,
                ``batch``, ``num_graphs``).
            node_mask: bool ``[N]``: nodes whose input encoding is replaced by the learned mask
                vector (attribute-masking pre-training).
        """
        h = self.node_encoder(batch.x, node_mask)
        vn = None
        if self.virtual_node:
            vn = self.vn_embedding.weight.expand(batch.num_graphs, -1)
        for k in range(self.num_layers):
            if vn is not None:
                h = h + vn.index_select(0, batch.batch)
            h_in = h
            h = self.norms[k](self.convs[k](h, batch.edge_index, batch.edge_attr))
            if k < self.num_layers - 1:
                h = F.relu(h)
            h = F.dropout(h, self.dropout, self.training)
            if vn is not None and k < self.num_layers - 1:
                pooled = global_pool(h_in, batch.batch, batch.num_graphs, "sum") + vn
                vn = F.dropout(self.vn_mlps[k](pooled), self.dropout, self.training)
        return h


class GraphModel(nn.Module):
    """Base class of graph-property models: a :class:`GNNEncoder`, pooling and a linear head.

    Subclasses set :attr:`conv_cls` (and their paper presets).  ``graphkit.fit`` routes
    ``task == "graph"`` models to :class:`~graphkit.training.graph.GraphPropTask`.

    Args:
        num_tasks: targets per graph (filled from the dataset by ``graphkit.fit``).
        num_layers: message-passing layers.
        emb_dim: hidden size.
        dropout: dropout ratio.
        pooling: ``"mean"`` or ``"sum"`` readout.
        virtual_node: OGB's virtual node.
        in_channels: ``None`` for OGB atom codes, else the width of real node features.
        edge_channels: ``None`` for OGB bond codes, ``0`` for none, else their width.
    """

    task: ClassVar[str] = "graph"
    conv_cls: ClassVar[Type[nn.Module]]
    #: the paper's hyper-parameters per dataset (``graphkit.fit(..., preset="paper")``)
    presets: ClassVar[Dict[str, Dict[str, Any]]] = {}
    #: training defaults for every dataset
    default_train: ClassVar[Dict[str, Any]] = {}

    def __init__(self, num_tasks: int, num_layers: int = 5, emb_dim: int = 300, dropout: float = 0.5,
                 pooling: str = "mean", virtual_node: bool = False, in_channels: Optional[int] = None,
                 edge_channels: Optional[int] = None) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if int(num_tasks) < 1:
            raise ConfigError(f"num_tasks must be >= 1, got {num_tasks}")
        self._hp = dict(num_tasks=int(num_tasks), num_layers=int(num_layers), emb_dim=int(emb_dim),
                        dropout=float(dropout), pooling=pooling, virtual_node=bool(virtual_node),
                        in_channels=in_channels, edge_channels=edge_channels)
        self.num_tasks = int(num_tasks)
        self.pooling = pooling
        self.encoder = GNNEncoder(type(self).conv_cls, num_layers, emb_dim, dropout, virtual_node, in_channels,
                                  edge_channels)
        self.head = nn.Linear(emb_dim, self.num_tasks)
        self.head.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise encoder and head."""
        self.encoder.reset_parameters()
        self.head.reset_parameters()

    def embed(self, batch: Any) -> torch.Tensor:
        """Graph embeddings ``[num_graphs, emb_dim]`` (pooled last layer).

        Args:
            batch: a :class:`~graphkit.datasets.GraphBatch`.
        """
        return global_pool(self.encoder(batch), batch.batch, batch.num_graphs, self.pooling)

    def forward(self, batch: Any) -> torch.Tensor:  # type: ignore[override]
        """Predictions ``[num_graphs, num_tasks]`` (logits for classification).

        Args:
            batch: a :class:`~graphkit.datasets.GraphBatch`.
        """
        return self.head(self.embed(batch))

    @staticmethod
    def data_args(dataset: Any) -> Dict[str, Any]:
        """Constructor arguments read from the dataset: ``num_tasks``, and the input widths
        when the graphs carry real-valued (not OGB categorical) features."""
        out: Dict[str, Any] = {"num_tasks": int(dataset.num_tasks)}
        col = getattr(dataset, "collection", None)
        if col is not None and col.x.is_floating_point():
            out["in_channels"] = col.num_node_features
            ea = col.edge_attr
            out["edge_channels"] = 0 if ea is None else (int(ea.shape[1]) if ea.is_floating_point() else None)
        return out

    def hparams(self) -> Dict[str, Any]:
        """The constructor arguments (for records and checkpoints)."""
        return dict(self._hp)

    def encoder_config(self) -> Dict[str, Any]:
        """What an encoder saved by pre-training must agree on to be loaded into this model."""
        hp = self._hp
        return {"conv": type(self).conv_cls.__name__, "num_layers": hp["num_layers"], "emb_dim": hp["emb_dim"],
                "virtual_node": hp["virtual_node"], "in_channels": hp["in_channels"],
                "edge_channels": hp["edge_channels"]}


def _edge_encoder(emb_dim: int, edge_channels: Optional[int]) -> Optional[nn.Module]:
    """The per-layer edge encoder: OGB bond codes, a linear map of real features, or none."""
    if edge_channels == 0:
        return None
    return make_input_encoder(edge_channels, emb_dim, "bond")


def edge_embedding(encoder: Optional[nn.Module], edge_attr: Optional[torch.Tensor], num_edges: int,
                   like: torch.Tensor) -> torch.Tensor:
    """The edge embeddings ``[E, d]`` (zeros without an edge encoder or features)."""
    if encoder is None or edge_attr is None:
        return like.new_zeros(num_edges, like.shape[1])
    return encoder(edge_attr)

