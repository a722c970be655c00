"""Training schemes: joint training (:class:`SSLJointModel`, :class:`SelfTaskGCN`) and
two-stage pre-training (:func:`pretrain`), plus the task registry."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type, Union

import numpy as np
import torch
from torch import nn

from ..exceptions import ConfigError
from ..graph import Graph
from ..models.base import NodeModel
from ..models.gcn import GCN
from ._utils import _float_arg, _int_arg
from .attribute import AttributeMask, PairwiseAttrSim
from .base import PretextTask
from .labels import ContextLabel, CorrectedLabel, Distance2Labeled, EnsembleLabel
from .structure import Distance2Clusters, EdgeMask, NodeProperty, PairwiseDistance

__all__ = ["TASKS", "get_task", "SSLJointModel", "SelfTaskGCN", "pretrain", "PretrainResult"]


TASKS: Dict[str, Type[PretextTask]] = {
    cls.name: cls
    for cls in (NodeProperty, EdgeMask, PairwiseDistance, Distance2Clusters, AttributeMask, PairwiseAttrSim,
                Distance2Labeled, ContextLabel, EnsembleLabel, CorrectedLabel)
}


def get_task(name: Union[str, PretextTask], **kwargs: Any) -> PretextTask:
    """A pretext task by name (see :data:`TASKS`), or ``name`` itself when it is already a task."""
    if isinstance(name, PretextTask):
        if kwargs:
            raise ConfigError("task options can only be given with a task name")
        return name
    key = str(name).lower().replace("-", "_")
    aliases = {cls.__name__.lower(): n for n, cls in TASKS.items()}
    key = aliases.get(key, key)
    if key not in TASKS:
        raise ConfigError(f"unknown pretext task {name!r}; available: {', '.join(sorted(TASKS))}")
    try:
        return TASKS[key](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad options for pretext task {key!r}: {exc}") from None


# ----------------------------------------------------------------------------- training schemes


def _hidden_dim(backbone: nn.Module, hidden_dim: Optional[int]) -> int:
    if hidden_dim is not None:
        return _int_arg("hidden_dim", hidden_dim, 1)
    for attr in ("hidden_channels", "hidden_dim"):
        v = getattr(backbone, attr, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    raise ConfigError(f"cannot infer the hidden width of {type(backbone).__name__}; pass hidden_dim=")


def _check_backbone(backbone: Any) -> None:
    if not isinstance(backbone, NodeModel):
        raise ConfigError(f"backbone must be a NodeModel, got {type(backbone).__name__}")
    if not hasattr(backbone, "last_hidden") and not callable(getattr(backbone, "embed", None)):
        raise ConfigError(f"backbone {type(backbone).__name__} exposes no hidden representation: it needs "
                          "a `last_hidden` attribute set by forward() or an `embed(x, graph)` method")


def _forward_hidden(backbone: NodeModel, x: torch.Tensor, graph: Graph) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(logits, hidden)`` of one forward pass (hidden = ``backbone.last_hidden``)."""
    logits = backbone(x, graph)
    hidden = getattr(backbone, "last_hidden", None)
    if hidden is None:
        if not callable(getattr(backbone, "embed", None)):
            raise ConfigError(f"{type(backbone).__name__}.last_hidden is None after forward()")
        hidden = backbone.embed(x, graph)
    return logits, hidden


class SSLJointModel(NodeModel):
    """Joint training of a backbone with a pretext task: ``L = L_task + lam · L_ssl``.

    ``forward(x, graph)`` returns the backbone's logits and keeps its hidden representation
    (``backbone.last_hidden``, e.g. the output of GCN's first layer); in training mode the
    backbone sees ``pretext.train_graph(graph)`` and ``pretext.train_features(x)``.
    :meth:`auxiliary_loss` returns ``lam · pretext.loss(hidden, head)`` for the last
    training-mode forward (``None`` in eval mode), which the node trainer adds to the
    cross-entropy.  :meth:`prepare` prepares the pretext targets from the dataset (graph,
    features and ``y[train_idx]`` only).

    For tasks with ``uses_predictions`` (EnsembleLabel, CorrectedLabel), every
    ``refresh_every`` training steps (from step ``refresh_every`` on) the model runs one
    eval-mode forward on the full graph and calls ``pretext.refresh(softmax(logits), hidden)``.

    Args:
        backbone: a :class:`NodeModel` exposing ``last_hidden`` (or ``embed``).
        pretext: a :class:`PretextTask` or a task name from :data:`TASKS`.
        lam: weight λ of the self-supervised loss (>= 0).
        hidden_dim: width of the hidden representation (default: ``backbone.hidden_channels``).
        refresh_every: steps between refreshes of prediction-based targets.
        pretext_seed: seed of the pretext task's random choices (default: drawn from torch's
            global generator at ``prepare``, so the trainer's seed fixes it).  Not called
            ``seed``: that name is the trainer's in ``graphkit.fit``/``run_seeds``.
        pretext_kwargs: options for the task when ``pretext`` is a name.
    """

    def __init__(self, backbone: NodeModel, pretext: Union[str, PretextTask] = "context_label", lam: float = 1.0,
                 hidden_dim: Optional[int] = None, refresh_every: int = 10,
                 pretext_seed: Optional[int] = None,
                 pretext_kwargs: Optional[Dict[str, Any]] = None) -> None:
        _check_backbone(backbone)
        super().__init__(backbone.in_channels, backbone.num_classes)
        self.backbone = backbone
        self.pretext = get_task(pretext, **(pretext_kwargs or {}))
        self.lam = _float_arg("lam", lam, 0.0, math.inf, high_open=True)
        self.hidden_dim = _hidden_dim(backbone, hidden_dim)
        self.refresh_every = _int_arg("refresh_every", refresh_every, 1)
        self.pretext_seed = None if pretext_seed is None else _int_arg("pretext_seed", pretext_seed, 0)
        self.head = self.pretext.head(self.hidden_dim, self.num_classes)
        self.last_hidden: Optional[torch.Tensor] = None
        self._steps = 0

    def reset_parameters(self) -> None:
        self.backbone.reset_parameters()
        for m in self.head.modules():
            if callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()
        self._steps = 0

    @property
    def sparse_input(self) -> bool:
        """Mirrors the backbone's ``sparse_input`` (the trainer may then pass CSR features)."""
        return bool(getattr(self.backbone, "sparse_input", False))

    def node_inputs(self, dataset: Any) -> Any:
        return self.backbone.node_inputs(dataset)

    def parameter_groups(self, weight_decay: float) -> Any:
        groups = list(self.backbone.parameter_groups(weight_decay))
        groups.append({"params": list(self.head.parameters()), "weight_decay": weight_decay})
        return groups

    def prepare(self, dataset: Any) -> None:
        """Prepare the backbone (if it needs it) and the pretext targets (reads ``y[train_idx]`` only).

        Args:
            dataset: the node dataset.
        """
        self.backbone.prepare(dataset)
        seed = self.pretext_seed
        if seed is None:
            seed = int(torch.randint(0, 2 ** 31 - 1, (1,)).item())
        tr = dataset.train_idx
        self.pretext.prepare(dataset.graph, dataset.x, tr, dataset.y[tr], dataset.num_classes,
                             np.random.default_rng(seed))
        self._steps = 0

    def forward(self, x: torch.Tensor, graph: Graph) -> torch.Tensor:  # type: ignore[override]
        """The backbone's logits ``[N, C]``; keeps its hidden representation for the pretext loss.

        In training mode the backbone sees the pretext task's training graph and features,
        and prediction-based targets are refreshed every ``refresh_every`` steps.

        Args:
            x: node features ``[N, F]``.
            graph: the graph.
        """
        if self.training and self.lam > 0:
            if not self.pretext.prepared:
                raise ConfigError("SSLJointModel: call prepare(dataset) before training")
            self._steps += 1
            if self.pretext.uses_predictions and self._steps % self.refresh_every == 0:
                self.refresh(x, graph)
            logits, hidden = _forward_hidden(self.backbone, self.pretext.train_features(x),
                                             self.pretext.train_graph(graph))
        else:
            logits, hidden = _forward_hidden(self.backbone, x, graph)
        self.last_hidden = hidden
        return logits

    @torch.no_grad()
    def refresh(self, x: torch.Tensor, graph: Graph) -> None:
        """Rebuild prediction-based targets from an eval-mode forward on the full graph.

        Args:
            x: node features ``[N, F]``.
            graph: the full graph.
        """
        was = self.backbone.training
        self.backbone.eval()
        try:
            logits, hidden = _forward_hidden(self.backbone, x, graph)
        finally:
            self.backbone.train(was)
        self.pretext.refresh(torch.softmax(logits.float(), -1), hidden)

    def ssl_loss(self) -> Optional[torch.Tensor]:
        """The unweighted pretext loss on the hidden representation of the last forward."""
        if self.last_hidden is None:
            return None
        return self.pretext.loss(self.last_hidden, self.head)

    def auxiliary_loss(self) -> Optional[torch.Tensor]:
        if not self.training or self.lam == 0 or self.last_hidden is None:
            return None
        return self.lam * self.ssl_loss()

    def hparams(self) -> Dict[str, Any]:
        bb = self.backbone.hparams() if hasattr(self.backbone, "hparams") else {}
        return {"backbone": type(self.backbone).__name__, "backbone_hparams": bb, "pretext": self.pretext.config(),
                "lam": self.lam, "hidden_dim": self.hidden_dim, "refresh_every": self.refresh_every,
                "pretext_seed": self.pretext_seed}

    def __repr__(self) -> str:
        return f"SSLJointModel({self.backbone!r}, {self.pretext!r}, lam={self.lam})"


class SelfTaskGCN(SSLJointModel):
    """:class:`SSLJointModel` with a :class:`~graphkit.models.gcn.GCN` backbone, built from
    hyper-parameters so that ``graphkit.fit`` / ``run_seeds`` can construct it.

    Args:
        in_channels, num_classes: as every NodeModel.
        pretext: task name (see :data:`TASKS`) or instance.
        lam: λ.
        hidden_channels, num_layers, dropout: GCN hyper-parameters.
        pretext_kwargs: options of the task.
        refresh_every, pretext_seed: as :class:`SSLJointModel`.
    """

    #: The SelfTask-GNN repository's setting: 128 hidden units, 200 epochs, no early stopping,
    #: the epoch of best validation accuracy (``benchmarks/reproduce_selftask.py`` uses it for
    #: the GCN baseline too).  λ and the task are the caller's choice.
    presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        name: {
            "model": {"hidden_channels": 128, "num_layers": 2, "dropout": 0.5},
            "train": {"lr": 0.01, "weight_decay": 5e-4, "epochs": 200, "patience": 0, "select": "val_acc",
                      "normalize_features": True},
        }
        for name in ("cora", "citeseer", "pubmed")
    }
    default_train: ClassVar[Dict[str, Any]] = {"lr": 0.01, "weight_decay": 5e-4, "epochs": 200, "patience": 0,
                                               "select": "val_acc", "normalize_features": True}

    def __init__(self, in_channels: int, num_classes: int, pretext: Union[str, PretextTask] = "context_label",
                 lam: float = 1.0, hidden_channels: int = 16, num_layers: int = 2, dropout: float = 0.5,
                 pretext_kwargs: Optional[Dict[str, Any]] = None, refresh_every: int = 10,
                 pretext_seed: Optional[int] = None) -> None:
        if not isinstance(num_layers, int) or num_layers < 2:
            raise ConfigError("SelfTaskGCN needs num_layers >= 2 (the pretext head reads a hidden layer)")
        backbone = GCN(in_channels, num_classes, hidden_channels=hidden_channels, num_layers=num_layers,
                       dropout=dropout)
        super().__init__(backbone, pretext, lam, refresh_every=refresh_every, pretext_seed=pretext_seed,
                         pretext_kwargs=pretext_kwargs)
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.pretext_kwargs = pretext_kwargs


@dataclass
class PretrainResult:
    """Outcome of :func:`pretrain`: the trained ``head`` and the per-epoch ``losses``."""

    head: nn.Module
    losses: List[float] = field(default_factory=list)


def pretrain(backbone: NodeModel, pretext: Union[str, PretextTask], dataset: Any, epochs: int = 200,
             lr: float = 0.01, weight_decay: float = 5e-4, seed: int = 0, normalize_features: bool = True,
             hidden_dim: Optional[int] = None, device: Optional[str] = None) -> PretrainResult:
    """Two-stage scheme, stage 1: train ``backbone``'s hidden layers on the pretext task alone.

    Full-batch Adam on ``pretext.loss(hidden, head)`` for ``epochs`` steps (no labels are
    used except by label-based tasks, which read ``y[train_idx]`` only; prediction-based
    refreshes are skipped because the classifier is untrained).  The backbone is updated
    in place; fine-tune it afterwards with the standard node trainer (stage 2), e.g.
    ``NodeClassificationTrainer(backbone, dataset, config).fit()``.

    Args:
        backbone: a NodeModel exposing ``last_hidden`` or ``embed``.
        pretext: task or task name.
        dataset: a NodeDataset.
        epochs, lr, weight_decay: optimisation.
        seed: seeds torch and the task's random choices.
        normalize_features: row-normalise features as the node trainer does with
            ``normalize_features=True`` (use the same setting as the fine-tuning run).
        hidden_dim: hidden width (default ``backbone.hidden_channels``).
        device: torch device (default CPU).

    Returns:
        :class:`PretrainResult`.
    """
    from ..training.node import SPARSE_INPUT_DENSITY, _to_csr, row_normalize
    from ..utils import seed_everything

    _check_backbone(backbone)
    task = get_task(pretext)
    epochs = _int_arg("epochs", epochs, 1)
    lr = _float_arg("lr", lr, 0.0, math.inf, low_open=True, high_open=True)
    weight_decay = _float_arg("weight_decay", weight_decay, 0.0, math.inf, high_open=True)
    rng = seed_everything(_int_arg("seed", seed, 0))
    dev = torch.device(device or "cpu")
    x = backbone.node_inputs(dataset)
    if not isinstance(x, torch.Tensor):
        raise ConfigError("pretrain needs tensor node features")
    x = x.float()
    if normalize_features:
        x = row_normalize(x)
    if (getattr(backbone, "sparse_input", False) and x.dim() == 2 and x.layout == torch.strided and x.numel()
            and torch.count_nonzero(x).item() <= SPARSE_INPUT_DENSITY * x.numel()):
        x = _to_csr(x)
    tr = dataset.train_idx
    task.prepare(dataset.graph, dataset.x, tr, dataset.y[tr], dataset.num_classes, rng)
    head = task.head(_hidden_dim(backbone, hidden_dim), dataset.num_classes).to(dev)
    backbone.to(dev)
    x = x.to(dev)
    graph = task.train_graph(dataset.graph.to(dev))
    xs = task.train_features(x)
    opt = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=lr, weight_decay=weight_decay)
    losses: List[float] = []
    backbone.train()
    head.train()
    for _ in range(epochs):
        _, hidden = _forward_hidden(backbone, xs, graph)
        loss = task.loss(hidden, head)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    backbone.eval()
    return PretrainResult(head, losses)
