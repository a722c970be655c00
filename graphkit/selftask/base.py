"""The interface every pretext task implements (:class:`PretextTask`)."""
from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional

import numpy as np
import torch
from torch import nn

from ..exceptions import ConfigError
from ..graph import Graph
from ._utils import _int_arg, _np

__all__ = ["PretextTask"]


class PretextTask:
    """Base class of the pretext tasks (see the module docstring for the interface).

    Subclasses set ``name``, ``group`` (``"structure"``, ``"attribute"`` or ``"selftask"``)
    and implement :meth:`_prepare`, :meth:`head` and :meth:`loss`.

    After :meth:`prepare`, ``labeled`` is a bool mask ``[N]`` of the training nodes (the
    tasks that, like the paper's code, act on unlabelled nodes only use ``~labeled``).
    """

    name: ClassVar[str] = ""
    group: ClassVar[str] = ""
    uses_predictions: ClassVar[bool] = False

    def __init__(self) -> None:
        self.prepared = False
        self.num_nodes = 0
        self.num_classes = 0
        self._gen: Optional[torch.Generator] = None
        self._dev_cache: Dict[Any, torch.Tensor] = {}

    # -- interface -------------------------------------------------------------
    def prepare(self, graph: Graph, x: Optional[torch.Tensor], train_idx: Any, y_train: Any, num_classes: int,
                rng: Optional[np.random.Generator] = None) -> "PretextTask":
        """Compute the targets once.

        Args:
            graph: the full graph.
            x: node features ``[N, F]`` (may be None for structure tasks).
            train_idx: ids of the training nodes.
            y_train: labels of the training nodes, aligned with ``train_idx``.
            num_classes: number of classes C.
            rng: NumPy generator for every random choice (default: seed 0).

        Returns:
            ``self``.
        """
        if not isinstance(graph, Graph):
            raise ConfigError(f"graph must be a graphkit Graph, got {type(graph).__name__}")
        num_classes = _int_arg("num_classes", num_classes, 1)
        tr = _np(train_idx, np.int64).reshape(-1)
        yt = _np(y_train, np.int64).reshape(-1)
        if tr.shape != yt.shape:
            raise ConfigError(f"train_idx and y_train must have the same length, got {tr.shape[0]} and {yt.shape[0]}")
        if tr.size and (tr.min() < 0 or tr.max() >= graph.num_nodes):
            raise ConfigError(f"train_idx holds ids outside [0, {graph.num_nodes})")
        if yt.size and (yt.min() < 0 or yt.max() >= num_classes):
            raise ConfigError(f"y_train must hold labels in [0, {num_classes}), got range [{yt.min()}, {yt.max()}]")
        if x is not None and int(x.shape[0]) != graph.num_nodes:
            raise ConfigError(f"x has {int(x.shape[0])} rows but the graph has {graph.num_nodes} nodes")
        rng = np.random.default_rng(0) if rng is None else rng
        self.num_nodes = graph.num_nodes
        self.num_classes = num_classes
        self._gen = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        self._dev_cache = {}
        self.labeled = np.zeros(graph.num_nodes, dtype=bool)
        self.labeled[tr] = True
        self._prepare(graph, x, tr, yt, rng)
        self.prepared = True
        return self

    def prepare_dataset(self, dataset: Any, rng: Optional[np.random.Generator] = None,
                        x: Optional[torch.Tensor] = None) -> "PretextTask":
        """:meth:`prepare` from a :class:`~graphkit.datasets.NodeDataset` (reads ``y[train_idx]`` only).

        Args:
            dataset: the node dataset (graph, features, split, labels).
            rng: NumPy generator for every random choice (default: seed 0).
            x: features to use instead of ``dataset.x`` (e.g. row-normalised ones).
        """
        tr = dataset.train_idx
        return self.prepare(dataset.graph, dataset.x if x is None else x, tr, dataset.y[tr], dataset.num_classes, rng)

    def head(self, hidden_dim: int, num_classes: int) -> nn.Module:
        """The task's head on ``hidden_dim``-wide node representations.

        Args:
            hidden_dim: width of the backbone's hidden representation.
            num_classes: number of classes C (label-based tasks predict per-class targets).
        """
        raise NotImplementedError

    def loss(self, hidden: torch.Tensor, head: nn.Module) -> torch.Tensor:
        """The self-supervised loss of one step from the hidden node representations ``[N, h]``.

        Args:
            hidden: the backbone's hidden node representations ``[N, h]``.
            head: the module built by :meth:`head`.
        """
        raise NotImplementedError

    def train_graph(self, graph: Graph) -> Graph:
        """The graph the backbone sees during training (default: ``graph``)."""
        return graph

    def train_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features the backbone sees during training (default: ``x``)."""
        return x

    def refresh(self, probs: torch.Tensor, hidden: Optional[torch.Tensor]) -> None:
        """Rebuild targets from the model's class probabilities ``[N, C]`` and hidden ``[N, h]``.

        Args:
            probs: the current model's class probabilities ``[N, C]``.
            hidden: its hidden node representations ``[N, h]`` (may be ``None``).
        """

    def config(self) -> Dict[str, Any]:
        """The task's hyper-parameters (for result records)."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    # -- helpers ---------------------------------------------------------------
    def _prepare(self, graph: Graph, x: Optional[torch.Tensor], train_idx: np.ndarray, y_train: np.ndarray,
                 rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _check_ready(self, hidden: torch.Tensor) -> None:
        if not self.prepared:
            raise ConfigError(f"{type(self).__name__}: call prepare() before loss()")
        if hidden.dim() != 2 or hidden.shape[0] != self.num_nodes:
            raise ConfigError(f"hidden must have shape [{self.num_nodes}, h], got {tuple(hidden.shape)}")

    def _on(self, key: str, value: Any, device: torch.device) -> torch.Tensor:
        """``value`` as a tensor on ``device``, cached under ``key`` (cleared by prepare/refresh)."""
        ck = (key, str(device))
        t = self._dev_cache.get(ck)
        if t is None:
            t = torch.as_tensor(value).to(device)
            self._dev_cache[ck] = t
        return t

    def _randint(self, high: int, size: int) -> torch.Tensor:
        return torch.randint(0, high, (size,), generator=self._gen)

    def _require_x(self, x: Optional[torch.Tensor]) -> np.ndarray:
        if x is None:
            raise ConfigError(f"{type(self).__name__} needs node features (x is None)")
        return _np(x, np.float64)
