"""The interface every recommendation model implements, so one trainer serves all."""
from __future__ import annotations

import inspect
from typing import Any, ClassVar, Dict, Tuple

import scipy.sparse as sp
import torch
from torch import nn

from ..exceptions import ConfigError, GraphError
from ..graph import Graph


class RecommenderModel(nn.Module):
    """Base class of graphkit's recommendation models.

    Subclasses take their hyper-parameters in ``__init__(num_users, num_items, ...)``
    and implement :meth:`loss` and :meth:`embeddings`.  Data-dependent state (the
    normalized graph, degree statistics, item–item neighbours, ...) is set up in
    :meth:`prepare`, which the trainer calls once with the training interactions
    before the first step.

    Class attributes:
        presets: per-dataset hyper-parameters from the paper, ``{dataset: {name: value}}``.
        default_train: training defaults (``lr``, ``batch_size``, ``num_negatives``,
            ``epochs``, ...) that the trainer uses unless overridden.

    Attributes:
        fresh_weights: True while the weights are the constructor's (or ``reset_parameters``')
            random draw.  A model with a data-dependent start (``init="svd"``) applies it in
            :meth:`prepare` only then, so preparing a loaded, resumed or warm-started model
            keeps its weights.  Loading a state dict clears it; code that writes weights
            another way calls :meth:`keep_weights`.
        negative_sampling: where the trainer draws negatives from: ``"exclude_positives"``
            (uniform over the items the user has no training interaction with; the default)
            or ``"all_items"`` (uniform over all items).  A model may make it a constructor
            argument (UltraGCN does).
    """

    presets: ClassVar[Dict[str, Dict[str, Any]]] = {}
    default_train: ClassVar[Dict[str, Any]] = {}
    negative_sampling: str = "exclude_positives"

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__()
        if num_users <= 0 or num_items <= 0:
            raise ConfigError(f"num_users and num_items must be positive, got {num_users} and {num_items}")
        self.num_users = int(num_users)
        self.num_items = int(num_items)
        self.fresh_weights = True

    @classmethod
    def check_dependencies(cls) -> None:
        """Raise :class:`~graphkit.exceptions.ConfigError` naming the missing optional package
        when this model cannot run here (ALS without ``implicit``).  :func:`graphkit.fit` and the
        benchmark scripts call it before loading any data, so a missing extra fails in a second,
        not after an hour of other runs.  The base class needs nothing."""

    # -- to implement --------------------------------------------------------
    def prepare(self, train: sp.csr_matrix, graph: Graph) -> None:
        """Set up data-dependent state from the training interactions.

        Args:
            train: the [U, I] binary training matrix (validation and test excluded).
            graph: the bipartite :class:`~graphkit.Graph` built from ``train``, already on
                the model's device.
        """

    def loss(self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch.

        Args:
            users: user ids, int64 [B].
            pos_items: one positive item per user, int64 [B].
            neg_items: sampled negative items, int64 [B, n] (n = ``num_negatives``).

        Returns:
            A scalar tensor (regularization included).
        """
        raise NotImplementedError

    @torch.no_grad()
    def embeddings(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_embeddings [U, d], item_embeddings [I, d])``; the score of
        (u, i) is their dot product."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------
    @torch.no_grad()
    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of ``users`` against ``items`` (all items when None): [len(users), n_items]."""
        ue, ie = self.embeddings()
        u = ue[users.to(ue.device)]
        if items is None:
            return u @ ie.T
        return u @ ie[items.to(ie.device)].T

    def keep_weights(self) -> None:
        """Mark the current weights as set (copied, trained): :meth:`prepare` keeps them."""
        self.fresh_weights = False

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self.fresh_weights = False   # loaded weights are never replaced by a data-dependent start

    def hparams(self) -> Dict[str, Any]:
        """The constructor arguments of this instance (for result records and saving)."""
        out: Dict[str, Any] = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name != "self" and hasattr(self, name):
                out[name] = getattr(self, name)
        return out




class NodeModel(nn.Module):
    """Base class of graphkit's node-classification models (DAGNN, CatGCN, GCN, ...).

    Subclasses take ``__init__(in_channels, num_classes, ...)`` plus their
    hyper-parameters and implement :meth:`reset_parameters` and :meth:`forward`.
    The node trainer (:class:`graphkit.training.node.NodeClassificationTrainer`) calls
    :meth:`prepare` once with the dataset, then trains full-batch on
    ``cross_entropy(forward(x, graph)[train_idx], y[train_idx]) + auxiliary_loss()``.

    Class attributes:
        task: ``"node"`` (how :func:`graphkit.fit` picks the node trainer).
        presets: the paper's hyper-parameters per dataset,
            ``{dataset: {"model": {...}, "train": {...}}}``; ``"train"`` holds
            :class:`~graphkit.training.node.NodeTrainConfig` fields.
        default_train: training defaults used for every dataset (presets override them).
    """

    task: ClassVar[str] = "node"
    presets: ClassVar[Dict[str, Dict[str, Any]]] = {}
    default_train: ClassVar[Dict[str, Any]] = {}
    #: ``forward`` also accepts ``x`` as a ``torch.sparse_csr`` tensor; the trainer then
    #: passes sparse bag-of-words features (density <= 10%) in that layout, which makes
    #: input dropout and the first linear layer ~10x cheaper.  Read as ``model.sparse_input``
    #: (a property works, e.g. a wrapper mirroring its backbone); a subclass whose code uses
    #: ``x`` densely must set it back to ``False``.
    sparse_input: ClassVar[bool] = False

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)

    # -- to implement --------------------------------------------------------
    def reset_parameters(self) -> None:
        """Re-initialise every learnable parameter."""
        raise NotImplementedError

    def prepare(self, dataset: Any) -> None:
        """Set up data-dependent state before training (optional).

        May read the graph, the features and ``dataset.y[dataset.train_idx]``; never the
        validation or test labels.
        """

    def forward(self, x: Any, graph: Graph) -> torch.Tensor:  # type: ignore[override]
        """Class logits ``[N, C]`` (log-probabilities are fine too) of every node.

        graphkit's node models also take PyG's call convention ``model(x, edge_index)``
        (optionally ``model(x, edge_index, edge_weight)``): see :meth:`_as_graph`.

        Args:
            x: node inputs, as returned by :meth:`node_inputs` (features ``[N, F]``, dense or
                ``torch.sparse_csr`` when :attr:`sparse_input` is set).
            graph: the graph (:class:`~graphkit.Graph`), or a PyG ``edge_index`` ``[2, E]``.
        """
        raise NotImplementedError

    def _as_graph(self, graph: Any, num_nodes: int, edge_weight: Any = None) -> Graph:
        """The :class:`~graphkit.Graph` to run on: ``graph`` itself, or the graph of a PyG ``edge_index``.

        An ``edge_index`` (an integer tensor ``[2, E]``, row 0 sources, row 1 targets) becomes
        ``Graph.from_edge_index(edge_index, num_nodes, edge_weight)`` on the edge_index's
        device: duplicate edges merged (weights summed), ids checked against ``num_nodes``.
        The graph is cached on the model, keyed on the tensors' memory, shape, strides,
        device and in-place version (and ``num_nodes``), so calling the model again with the
        same ``edge_index`` does not rebuild it (nor its normalized adjacency).  Edges are read
        as PyG reads them (messages flow from ``edge_index[0]`` to ``edge_index[1]``, so a node
        aggregates over its in-edges), so a directed ``edge_index`` gives PyG's answer too.

        Args:
            graph: a :class:`~graphkit.Graph`, or an ``edge_index`` tensor.
            num_nodes: the number of nodes N (the rows of ``x``).
            edge_weight: optional float weights ``[E]`` of the edge_index's edges (fixed: no
                gradient flows to them).

        Raises:
            ConfigError: ``graph`` is neither; ``edge_weight`` given with a Graph, or
                requiring grad.
            GraphError: edge_index ids out of ``[0, num_nodes)``, bad weights.
        """
        if isinstance(graph, Graph):
            if edge_weight is not None:
                raise ConfigError("edge_weight goes with an edge_index; a graphkit Graph carries its own weights")
            return graph
        int_types = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
        if not (isinstance(graph, torch.Tensor) and graph.layout == torch.strided and graph.dim() == 2
                and graph.shape[0] == 2 and graph.dtype in int_types):
            got = (f"a {graph.dtype} tensor of shape {tuple(graph.shape)}" if isinstance(graph, torch.Tensor)
                   else f"a {type(graph).__name__}")
            raise ConfigError(f"{type(self).__name__} takes a graphkit Graph or a PyG edge_index (an integer tensor "
                              f"of shape [2, E]) after x, got {got}")
        if edge_weight is not None:
            if not isinstance(edge_weight, torch.Tensor):
                raise ConfigError(f"edge_weight must be a tensor of shape [E], got a {type(edge_weight).__name__}")
            if edge_weight.requires_grad:
                raise ConfigError("edge_weight requires grad, but graphkit builds a fixed graph from it (no gradient "
                                  "would reach it): pass edge_weight.detach()")

        def tensor_key(t: torch.Tensor) -> Tuple[Any, ...]:
            return (t.data_ptr(), tuple(t.shape), t.stride(), t.dtype, t.device, t._version)

        key = (tensor_key(graph), None if edge_weight is None else tensor_key(edge_weight), int(num_nodes))
        cached = self.__dict__.get("_edge_index_graph")
        if cached is not None and cached[0] == key:
            return cached[3]
        for row, what in ((0, "source"), (1, "target")):  # named as the caller's edge_index has them
            ids = graph[row]
            bad = (ids < 0) | (ids >= int(num_nodes))
            if bool(bad.any()):
                i = int(torch.nonzero(bad)[0])
                raise GraphError(f"edge_index: {what} id {int(ids[i])} at position {i} is out of range for "
                                 f"{int(num_nodes)} nodes")
        # PyG's message passing (flow "source_to_target") aggregates at edge_index[1] over edge_index[0];
        # graphkit aggregates a CSR row over its columns: the rows are the targets.
        g = Graph.from_edge_index(graph.flip(0), int(num_nodes), edge_weight).to(graph.device)
        # the tensors are kept with the key: their memory cannot be reused by another tensor meanwhile
        self.__dict__["_edge_index_graph"] = (key, graph, edge_weight, g)
        return g

    def auxiliary_loss(self) -> "torch.Tensor | None":
        """An extra training loss computed from the last forward pass (e.g. self-supervision), or None."""
        return None

    # -- hooks with defaults -------------------------------------------------
    @staticmethod
    def input_dim(dataset: Any) -> int:
        """``in_channels`` for ``dataset`` (:func:`graphkit.fit` builds ``cls(input_dim(ds), ds.num_classes)``)."""
        return int(dataset.num_features)

    def node_inputs(self, dataset: Any) -> Any:
        """What the trainer passes as ``x`` to :meth:`forward` (default ``dataset.x``)."""
        return dataset.x

    def parameter_groups(self, weight_decay: float) -> Any:
        """Optimizer parameter groups; by default weight decay applies to every parameter.

        Args:
            weight_decay: the configured weight decay.
        """
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": weight_decay}]

    def hparams(self) -> Dict[str, Any]:
        """The constructor arguments of this instance (for result records and saving)."""
        out: Dict[str, Any] = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name != "self" and hasattr(self, name):
                out[name] = getattr(self, name)
        return out


__all__ = ["RecommenderModel", "NodeModel"]
