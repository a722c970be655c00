"""The node-classification dataset container shared by the Planetoid and OGB loaders."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np
import torch

from ..utils import fingerprint_arrays

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = ["NodeDataset", "node_split_fingerprint"]


def node_split_fingerprint(train_idx: Any, val_idx: Any, test_idx: Any, y: Any) -> str:
    """Fingerprint of a node split: :func:`graphkit.utils.fingerprint_arrays` over the train,
    validation and test index arrays and the label vector.

    Args:
        train_idx: training node indices.
        val_idx: validation node indices.
        test_idx: test node indices.
        y: the label vector.
    """
    return fingerprint_arrays(train_idx, val_idx, test_idx, y, names=["train_idx", "val_idx", "test_idx", "y"])


@dataclass(eq=False)
class NodeDataset:
    """A single graph with node features, labels and a train/validation/test node split.

    Args:
        name: dataset name.
        graph: the graph (:class:`~graphkit.graph.Graph`).
        x: node features, float32 ``[N, F]``; ``None`` for OGB datasets without node features.
        y: labels, int64 ``[N]`` with ``-1`` for unlabelled nodes (``[N, T]`` for
            multi-task OGB datasets).
        train_idx, val_idx, test_idx: int64 node indices of the split.
        num_classes: number of classes.
        split: ``"public"`` (the dataset's official split) or ``"random"``.
        split_seed: seed of a random split (``None`` for official splits).
        fingerprint: hash of the split indices and labels (:func:`node_split_fingerprint`).
        meta: provenance (files, sha256, split definition, OGB evaluator name, ...).
    """

    name: str
    graph: "Graph"
    x: Optional[torch.Tensor]
    y: torch.Tensor
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    num_classes: int
    split: str
    split_seed: Optional[int]
    fingerprint: str
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        """Number of nodes N."""
        return int(self.graph.num_nodes)

    @property
    def num_features(self) -> int:
        """Feature dimension F (0 when there are no features)."""
        return 0 if self.x is None else int(self.x.shape[1])

    def masks(self) -> Dict[str, torch.Tensor]:
        """Boolean ``train``/``val``/``test`` masks of length N."""
        out = {}
        for key, idx in (("train", self.train_idx), ("val", self.val_idx), ("test", self.test_idx)):
            m = torch.zeros(self.num_nodes, dtype=torch.bool)
            m[idx] = True
            out[key] = m
        return out

    def split_record(self) -> Dict[str, Any]:
        """``dict(dataset=, fingerprint=, split=, split_seed=)`` for result records."""
        return {
            "dataset": self.name, "fingerprint": self.fingerprint, "split": self.split, "split_seed": self.split_seed,
        }

    @classmethod
    def from_pyg(cls, data: Any, **options: Any) -> "NodeDataset":
        """A NodeDataset from a PyG ``Data`` with ``x``, ``edge_index`` and ``y``.

        The same conversion as :func:`graphkit.datasets.node_dataset_from_pyg` (and
        ``as_dataset(data)``): the data's ``train_mask``/``val_mask``/``test_mask`` are the
        split when all three are present, otherwise the random Planetoid split is drawn;
        the graph is made undirected, self-loops dropped.  ``NodeDataset.from_pyg(ds.to_pyg())``
        gives back the split of ``ds`` (the same :attr:`fingerprint`).

        Args:
            data: a ``torch_geometric.data.Data``.
            **options: keyword options of :func:`~graphkit.datasets.node_dataset_from_pyg`:
                ``split`` (``None``/``"masks"``/``"random"``), ``seed``,
                ``num_train_per_class``, ``num_val``, ``num_test``, ``to_undirected``, ``name``.

        Raises:
            DataFormatError: a missing or malformed ``x``, ``y``, ``edge_index`` or mask (the
                error names the field, what was expected and what was found).
            ConfigError: an unknown option, bad split options.
        """
        from .convert import _call, node_dataset_from_pyg

        return _call(node_dataset_from_pyg, data, options)

    def to_pyg(self) -> Any:
        """A ``torch_geometric.data.Data`` with ``x``, ``y``, ``edge_index`` and the three masks
        (:meth:`from_pyg` reads it back with the same split)."""
        m = self.masks()
        attrs: Dict[str, Any] = {"y": self.y, "train_mask": m["train"], "val_mask": m["val"], "test_mask": m["test"]}
        if self.x is not None:
            attrs["x"] = self.x
        return self.graph.to_pyg(**attrs)

    def __repr__(self) -> str:
        return (
            f"NodeDataset(name={self.name!r}, num_nodes={self.num_nodes}, num_edges={self.graph.num_edges}, "
            f"num_features={self.num_features}, num_classes={self.num_classes}, split={self.split!r}, "
            f"train/val/test={len(self.train_idx)}/{len(self.val_idx)}/{len(self.test_idx)}, "
            f"fingerprint={self.fingerprint!r})"
        )


def as_index_tensor(a: Any) -> torch.Tensor:
    """An int64 CPU tensor from a numpy array, list or tensor of node indices."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(dtype=torch.long, device="cpu").reshape(-1)
    return torch.from_numpy(np.array(a, dtype=np.int64).reshape(-1))  # a copy: inputs may be read-only
