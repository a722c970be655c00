"""The interface every recommendation model implements, so one trainer serves all."""
from __future__ import annotations

import inspect
from typing import Any, ClassVar, Dict, Tuple

import scipy.sparse as sp
import torch
from torch import nn

from ..exceptions import ConfigError
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

        Args:
            x: node inputs, as returned by :meth:`node_inputs` (features ``[N, F]``, dense or
                ``torch.sparse_csr`` when :attr:`sparse_input` is set).
            graph: the graph.
        """
        raise NotImplementedError

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
