"""Full-batch training for node classification (GCN, DAGNN, CatGCN, SelfTask, ...).

Protocol (DAGNN / PyG ``benchmark/citation``): every epoch takes one Adam step on the
cross-entropy of the training nodes (plus the model's :meth:`auxiliary_loss`), then
evaluates the model (eval mode, no dropout) on the validation nodes.  The selected
epoch is the one with the lowest validation loss (``select="val_loss"``, DAGNN's
protocol) or the highest validation accuracy, ties broken by the lower validation loss
(``select="val_acc"``).  Training stops after ``patience`` epochs without a better
selected epoch, after ``epochs`` epochs, or after ``max_time`` seconds.  The weights of
the selected epoch are restored and the test split is evaluated once, at the end; the
model is deterministic in eval mode, so this equals "test accuracy at the epoch of
lowest validation loss".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch
import torch.nn.functional as F

from .hparams import build_run
from ..exceptions import ConfigError, TrainingError
from .engine import EngineConfig, Trainer, TrainingTask
from .result import FitResult

__all__ = [
    "NodeTrainConfig",
    "NodeClassificationTrainer",
    "NodeTask",
    "SeedsResult",
    "run_seeds",
    "fit_node",
    "select_epoch",
    "row_normalize",
]

SELECT_CHOICES = ("val_loss", "val_acc")
#: Features at most this dense go to models with ``sparse_input`` as ``torch.sparse_csr``.
SPARSE_INPUT_DENSITY = 0.1


def _to_csr(x: torch.Tensor) -> torch.Tensor:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return x.to_sparse_csr()


@dataclass
class NodeTrainConfig(EngineConfig):
    """Training hyper-parameters of a full-batch node-classification run (the shared ones
    are :class:`~graphkit.training.engine.EngineConfig`'s: ``optimizer``, ``scheduler``,
    ``checkpoint_dir``, ``max_time``, ``eval_every``, ...).

    Args:
        lr: learning rate.
        weight_decay: (L2) weight decay; models may restrict it to some parameters
            (:meth:`NodeModel.parameter_groups`).
        epochs: maximum number of epochs (one full-batch step each).
        patience: stop after this many validations without a better selected epoch (0 = never).
        select: ``"val_loss"`` (lowest validation loss) or ``"val_acc"`` (highest
            validation accuracy, ties broken by validation loss).
        seed: random seed (initialisation, dropout).
        normalize_features: divide every feature row by its sum before training
            (idempotent; rows summing to 0 stay 0).  Only for dense tensor features.
    """

    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 1000
    patience: int = 100
    seed: int = 0
    select: str = "val_loss"
    normalize_features: bool = False

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        self.validate_common()
        if self.select not in SELECT_CHOICES:
            raise ConfigError(f"select must be one of {SELECT_CHOICES}, got {self.select!r}")


def row_normalize(x: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum (rows summing to zero stay zero).

    Args:
        x: dense features ``[N, F]``.
    """
    s = x.sum(dim=1, keepdim=True)
    return torch.where(s != 0, x / torch.where(s != 0, s, torch.ones_like(s)), torch.zeros_like(x))


def _better(select: str, val_loss: float, val_acc: float, best: Tuple[float, float]) -> bool:
    """Whether (val_loss, val_acc) beats the best (val_loss, val_acc) so far."""
    best_loss, best_acc = best
    if select == "val_loss":
        return val_loss < best_loss
    return val_acc > best_acc or (val_acc == best_acc and val_loss < best_loss)


def select_epoch(history: Any, select: str = "val_loss") -> int:
    """The epoch the trainer selects from a history (DataFrame or list of dicts with
    ``epoch``, ``val_loss``, ``val_acc``): the first epoch with the lowest validation
    loss, or with the highest validation accuracy (ties: lowest loss, then earliest).

    Args:
        history: the per-epoch history.
        select: ``"val_loss"`` or ``"val_acc"``.
    """
    if select not in SELECT_CHOICES:
        raise ConfigError(f"select must be one of {SELECT_CHOICES}, got {select!r}")
    rows = history.to_dict("records") if hasattr(history, "to_dict") else list(history)
    if not rows:
        raise ConfigError("empty history")
    best_epoch, best = None, (math.inf, -math.inf)
    for row in rows:
        if _better(select, float(row["val_loss"]), float(row["val_acc"]), best):
            best = (float(row["val_loss"]), float(row["val_acc"]))
            best_epoch = int(row["epoch"])
    return int(best_epoch if best_epoch is not None else rows[0]["epoch"])


def _move(obj: Any, device: torch.device) -> Any:
    return obj.to(device) if hasattr(obj, "to") else obj


class NodeSelection:
    """Model selection on ``val_loss``/``val_acc`` (shared by the full-batch and mini-batch tasks)."""

    loss_column = "train_loss"

    def selection_key(self, val: Dict[str, float]) -> Tuple[float, ...]:
        if self.cfg.select == "val_loss":
            return (-val["val_loss"],)
        return (val["val_acc"], -val["val_loss"])

    def selection_text(self) -> str:
        return ("lowest validation loss" if self.cfg.select == "val_loss"
                else "highest validation accuracy (ties: lower validation loss)")

    def selection_record(self, best: Optional[Dict[str, float]]) -> Dict[str, Any]:
        return {"best_val_loss": best["val_loss"] if best else None,
                "best_val_acc": best["val_acc"] if best else None}

    def format_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        # the epoch's seconds include its validation; no validation split: NaN columns
        row["seconds"] = row["seconds"] + row.pop("eval_seconds", 0.0)
        row.setdefault("val_loss", float("nan"))
        row.setdefault("val_acc", float("nan"))
        return row


def check_node_data(model: Any, dataset: Any) -> None:
    """Raise :class:`ConfigError` unless ``dataset`` is a node dataset with training nodes and 1-D labels."""
    for name in ("graph", "y", "train_idx", "val_idx", "test_idx", "num_classes"):
        if not hasattr(dataset, name):
            raise ConfigError(f"{type(dataset).__name__} is not a node dataset: it has no {name!r}")
    if len(dataset.train_idx) == 0:
        raise ConfigError("the dataset has no training nodes")
    if dataset.y.dim() != 1:
        raise ConfigError(f"node classification needs 1-D labels, got shape {tuple(dataset.y.shape)}")


class NodeTask(NodeSelection, TrainingTask):
    """Full-batch node classification: one step per epoch on the cross-entropy of the
    training nodes (plus the model's :meth:`auxiliary_loss`), validation in eval mode.

    Args:
        dataset: a :class:`~graphkit.datasets.NodeDataset` (graph, features, labels, split).
    """

    name = "node"
    history_columns = ["epoch", "train_loss", "val_loss", "val_acc", "seconds"]

    def check(self, model: Any, cfg: Any) -> None:
        if getattr(model, "task", None) != "node":
            raise ConfigError(f"{type(model).__name__} is not a node-classification model (task != 'node')")
        check_node_data(model, self.dataset)

    def inputs(self, model: Any, device: torch.device) -> Any:
        """The node inputs of ``model`` as prepared for training (normalised, sparse when
        the model takes sparse input and the features are sparse enough).

        Args:
            model: the model (its ``node_inputs`` and ``sparse_input``).
            device: where to put them.
        """
        x = model.node_inputs(self.dataset)
        if x is None:
            raise ConfigError(f"{getattr(self.dataset, 'name', 'the dataset')} has no node features for "
                              f"{type(model).__name__} (dataset.x is None)")
        if self.cfg.normalize_features:
            if not isinstance(x, torch.Tensor):
                raise ConfigError(f"normalize_features needs tensor features, got {type(x).__name__}")
            x = row_normalize(x.to(torch.float32))
        if (bool(getattr(model, "sparse_input", False)) and isinstance(x, torch.Tensor) and x.dim() == 2
                and x.layout == torch.strided and x.numel() > 0
                and torch.count_nonzero(x).item() <= SPARSE_INPUT_DENSITY * x.numel()):
            x = _to_csr(x.to(torch.float32))
        return _move(x, device)

    def setup(self, trainer: Any) -> None:
        ds, model, dev = self.dataset, trainer.model, trainer.device
        self.cfg = trainer.cfg
        model.to(dev)
        self.graph = ds.graph.to(dev)
        self.x = self.inputs(model, dev)
        self.y = ds.y.to(dev)
        self.train_idx, self.val_idx, self.test_idx = (i.to(dev) for i in (ds.train_idx, ds.val_idx, ds.test_idx))
        model.prepare(ds)

    def param_groups(self, model: Any, weight_decay: float) -> Any:
        return model.parameter_groups(weight_decay)

    def teardown(self) -> None:
        self.graph = self.x = self.y = None

    def num_batches(self) -> int:
        return 1

    def train_batch(self, trainer: Any, epoch: int, batch: int) -> Tuple[torch.Tensor, float, float]:
        model = trainer.model
        model.train()
        logits = model(self.x, self.graph)
        loss = F.cross_entropy(logits[self.train_idx], self.y[self.train_idx])
        aux = model.auxiliary_loss()
        if aux is not None:
            loss = loss + aux
        return loss, float(loss.detach()), 1.0

    def has_validation(self) -> bool:
        return len(self.dataset.val_idx) > 0

    @torch.no_grad()
    def logits(self, model: Any) -> torch.Tensor:
        """Eval-mode logits of every node.

        Args:
            model: the model.
        """
        model.eval()
        return model(self.x, self.graph)

    def validate(self, trainer: Any, epoch: int) -> Dict[str, float]:
        val_loss, val_acc = _scores(self.logits(trainer.model), self.y, self.val_idx)
        if not math.isfinite(val_loss):
            raise TrainingError(f"non-finite validation loss {val_loss} at epoch {epoch}")
        return {"val_loss": val_loss, "val_acc": val_acc}

    def test(self, trainer: Any) -> Dict[str, float]:
        return node_test_metrics(self.dataset, self.logits(trainer.model).cpu(), self.dataset.test_idx.cpu())


def _scores(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> Tuple[float, float]:
    loss = F.cross_entropy(logits[idx], y[idx]).item()
    acc = (logits[idx].argmax(dim=1) == y[idx]).float().mean().item() if len(idx) else float("nan")
    return loss, acc


def node_test_metrics(ds: Any, scores: torch.Tensor, test_idx: torch.Tensor) -> Dict[str, float]:
    """Test accuracy and macro-F1 (plus OGB's evaluator on OGB datasets) of per-node
    ``scores`` (logits or one-hot predictions, CPU) on ``test_idx``."""
    from ..datasets.ogb_loader import ogb_node_metrics
    from ..metrics import accuracy, macro_f1

    y = ds.y.cpu()
    if len(test_idx) == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    metrics = {
        "accuracy": accuracy(scores[test_idx], y[test_idx]),
        "macro_f1": macro_f1(scores[test_idx], y[test_idx], num_classes=int(ds.num_classes)),
    }
    metrics.update(ogb_node_metrics(ds, scores[test_idx], test_idx))  # OGB datasets: ogb's Evaluator too
    return metrics


class NodeClassificationTrainer(Trainer):
    """The engine's :class:`~graphkit.training.engine.Trainer` on a :class:`NodeTask`:
    trains a :class:`~graphkit.models.base.NodeModel` full-batch on a node dataset.

    Args:
        model: the model (hyper-parameters set); :meth:`NodeModel.prepare` is called in
            :meth:`fit`.
        dataset: a :class:`graphkit.datasets.NodeDataset` (or subclass, e.g. ``CatGCNData``)
            with ``graph``, ``y``, ``train_idx``, ``val_idx``, ``test_idx``,
            ``num_classes`` and ``split_record()``.
        config: training hyper-parameters.
        callbacks: see :class:`~graphkit.training.engine.Trainer`.
    """

    def __init__(self, model: Any, dataset: Any, config: Optional[NodeTrainConfig] = None,
                 callbacks: Optional[List[Any]] = None) -> None:
        super().__init__(model, NodeTask(dataset), config or NodeTrainConfig(), callbacks)

    def _inputs(self) -> Any:
        self.task.cfg = self.cfg
        return self.task.inputs(self.model, self.device)

    @torch.no_grad()
    def predict(self, x: Any = None, graph: Any = None) -> torch.Tensor:
        """Eval-mode logits of every node (on the trainer's device).

        Args:
            x: node inputs (default: the dataset's, as prepared for training).
            graph: the graph (default: the dataset's, on the trainer's device).
        """
        self.model.eval()
        x = self._inputs() if x is None else x
        graph = self.dataset.graph.to(self.device) if graph is None else graph
        return self.model(x, graph)


# --------------------------------------------------------------------------- fit entry point
DATASET_OPTIONS = ("split", "split_seed")


def node_run(model: Any, dataset: Any, data_dir: Any, preset: Any, seed: int, hparams: Dict[str, Any],
             config_cls: Type) -> Tuple[Any, Any, Any]:
    """``(model, dataset, config)`` of a node-classification :func:`graphkit.fit` call (full-batch
    or mini-batch): the dataset loaded with its ``split``/``split_seed``, the preset merged."""
    from . import _resolve_model

    cls, instance = _resolve_model(model)
    split = hparams.pop("split", None)
    split_seed = hparams.pop("split_seed", None)
    if split == "random" and split_seed is None:
        split_seed = seed
    ds = _load_node_dataset(dataset, data_dir, split, split_seed)
    if not hasattr(ds, "train_idx") or not hasattr(ds, "num_classes"):
        raise ConfigError(f"{cls.__name__} needs a node-classification dataset, got {type(ds).__name__}")
    instance, cfg = build_run(cls, instance, ds, hparams, seed, preset, config_cls, ("in_channels", "num_classes"),
                              lambda **kw: cls(cls.input_dim(ds), int(ds.num_classes), **kw), DATASET_OPTIONS)
    return instance, ds, cfg


def _load_node_dataset(dataset: Any, data_dir: Any, split: Optional[str], split_seed: Optional[int]) -> Any:
    if not isinstance(dataset, str):
        if split is not None or split_seed is not None:
            raise ConfigError("split/split_seed only apply when the dataset is given by name")
        return dataset
    from .. import datasets as gk_datasets

    kw: Dict[str, Any] = {}
    if split is not None:
        kw["split"] = split
    if split_seed is not None:
        kw["seed"] = int(split_seed)
    return gk_datasets.load(dataset, root=data_dir, **kw)


def fit_node(
    model: Any,
    dataset: Any,
    *,
    data_dir: Any = None,
    preset: Union[bool, str] = True,
    seed: int = 0,
    resume: bool = False,
    callbacks: Optional[List[Any]] = None,
    **hparams: Any,
) -> FitResult:
    """:func:`graphkit.fit` for node-classification models (``model.task == "node"``).

    Args:
        model: a :class:`NodeModel` subclass, its registered name, or a built instance
            (used as is: no preset, no re-initialisation).
        dataset: a dataset name (``"cora"``) or a loaded :class:`NodeDataset`.
        data_dir: where dataset files live (default ``$GRAPHKIT_DATA``).
        preset: ``True``/``"paper"``, ``"fast"`` or ``False`` (see :func:`graphkit.fit`); explicit ``hparams`` override it.
        seed: seed of initialisation and dropout.
        resume: continue from ``checkpoint_dir`` (see :func:`graphkit.fit`).
        callbacks: see :mod:`graphkit.training.callbacks`.
        **hparams: model hyper-parameters, :class:`NodeTrainConfig` fields, and, for a
            dataset given by name, ``split="public"|"random"`` and ``split_seed`` (default:
            ``seed``, so every seed of a random-split study gets its own split).
    """
    instance, ds, cfg = node_run(model, dataset, data_dir, preset, seed, hparams, NodeTrainConfig)
    return NodeClassificationTrainer(instance, ds, cfg, callbacks=callbacks).fit(resume=resume)


# --------------------------------------------------------------------------- several seeds
@dataclass
class SeedsResult:
    """The outcome of :func:`run_seeds`.

    Attributes:
        mean: mean of every test metric over the seeds.
        std: sample standard deviation (ddof=1; 0 for a single seed).
        per_seed: one ``{"seed": s, metric: value, ...}`` dict per run, in seed order.
        records: the :class:`FitResult` record of every run.
        results: the :class:`FitResult` objects (models included) when ``keep_models``.
    """

    mean: Dict[str, float]
    std: Dict[str, float]
    per_seed: List[Dict[str, Any]]
    records: List[Dict[str, Any]]
    results: List[FitResult] = field(default_factory=list)

    def table(self) -> Any:
        """A DataFrame, one row per seed (seed, split_seed, fingerprint, best_epoch, metrics)."""
        import pandas as pd

        rows = []
        for ps, rec in zip(self.per_seed, self.records):
            rows.append({"seed": ps["seed"], "split_seed": rec.get("split_seed"),
                         "fingerprint": rec.get("fingerprint"), "best_epoch": rec.get("best_epoch"),
                         **{k: v for k, v in ps.items() if k != "seed"}})
        return pd.DataFrame(rows)

    def summary(self, metric: str = "accuracy", scale: float = 100.0) -> str:
        """E.g. ``"84.31 ± 0.52 (20 seeds)"``.

        Args:
            metric: the test metric to summarise.
            scale: multiplier applied to mean and std (100: percent).
        """
        return f"{self.mean[metric] * scale:.2f} ± {self.std[metric] * scale:.2f} ({len(self.per_seed)} seeds)"

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={self.mean[k]:.4f}±{self.std[k]:.4f}" for k in self.mean)
        return f"SeedsResult({len(self.per_seed)} seeds, {shown})"


def run_seeds(model: Any, dataset: Any, seeds: Union[int, Sequence[int]], *, keep_models: bool = False,
              on_result: Optional[Callable[[int, FitResult], None]] = None, **hparams: Any) -> SeedsResult:
    """Train once per seed with :func:`graphkit.fit` and aggregate the test metrics.

    Args:
        model: a model class or registered name (an instance would be reused: not allowed).
        dataset: a dataset name or a loaded dataset.  With a name and ``split="random"``,
            every seed gets its own random split (``split_seed = seed``) unless
            ``split_seed`` is given.
        seeds: the seeds, or an int n for ``range(n)``.
        keep_models: keep every :class:`FitResult` (with its model) in ``results``.
        on_result: called as ``on_result(seed, result)`` after every run (progress, logging).
        **hparams: passed to :func:`graphkit.fit` (``preset``, ``data_dir``, hyper-parameters).
    """
    from . import fit

    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("run_seeds needs at least one seed")
    if isinstance(model, torch.nn.Module):
        raise ConfigError("run_seeds needs a model class or name, not an instance (each seed builds its own)")
    hparams.setdefault("progress", False)
    per_seed, records, results = [], [], []
    for s in seeds:
        res = fit(model, dataset, seed=s, **hparams)
        per_seed.append({"seed": s, **res.metrics})
        records.append(res.record)
        if on_result is not None:
            on_result(s, res)
        if keep_models:
            results.append(res)
    names = [k for k in per_seed[0] if k != "seed"]
    mean = {k: float(np.mean([p[k] for p in per_seed])) for k in names}
    std = {k: float(np.std([p[k] for p in per_seed], ddof=1)) if len(seeds) > 1 else 0.0 for k in names}
    return SeedsResult(mean, std, per_seed, records, results)
