"""Graph property prediction (OGB ``ogbg-*``): mini-batches of whole graphs.

Protocol (OGB's molecule example; Hu et al., ICLR 2020, Sec. 5): every epoch shuffles the
training graphs and takes one Adam step per batch of ``batch_size`` graphs on the
binary cross-entropy of the labelled targets (classification; unlabelled entries, NaN in
OGB's label files, are left out) or their mean squared error (regression).  After each
epoch the validation split is scored with OGB's ``Evaluator`` (ROC-AUC, RMSE, ...); the
epoch with the best validation score (highest ROC-AUC/AP/accuracy, lowest RMSE/MAE) is
selected, its weights restored, and the test split is scored once, at the end.

Batches come from :class:`~graphkit.datasets.GraphCollection` (vectorised gather, no
Python loop per graph).  ``graphkit.fit(..., init_from=...)`` starts the encoder from a
pre-trained one (:func:`graphkit.pretrain`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..exceptions import CheckpointError, ConfigError, TrainingError
from .engine import EngineConfig, Trainer, TrainingTask, _is_int
from .hparams import build_run
from .result import FitResult

__all__ = ["GraphTrainConfig", "GraphPropTask", "GraphPropTrainer", "fit_graph", "graph_metrics",
           "LOWER_IS_BETTER", "is_classification"]

#: Metrics where a smaller value is better (model selection, leaderboards).
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


@dataclass
class GraphTrainConfig(EngineConfig):
    """Training options of a graph-property run (shared ones: :class:`EngineConfig`).

    Args:
        lr: Adam learning rate (Hu et al., OGB: 1e-3).
        epochs: epochs (100).
        patience: stop after this many validations without a better one (0: never; Hu et al.
            and OGB train the full 100 epochs).
        batch_size: graphs per training batch (32).
        eval_batch_size: graphs per batch when scoring a split.
    """

    lr: float = 1e-3
    epochs: int = 100
    patience: int = 0
    batch_size: int = 32
    eval_batch_size: int = 1024

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        self.validate_common()
        for name in ("batch_size", "eval_batch_size"):
            v = getattr(self, name)
            if not (_is_int(v) and v > 0):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")


def is_classification(task_type: str) -> bool:
    """Whether an OGB ``task_type`` is a classification one (BCE loss, logits)."""
    return "classification" in str(task_type)


def _own_metric(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """OGB's metric definitions, for datasets without an official evaluator: ROC-AUC/AP
    averaged over the targets that have both classes labelled; RMSE/MAE over labelled entries."""
    if metric in ("rocauc", "ap"):
        from sklearn.metrics import average_precision_score, roc_auc_score

        fn = roc_auc_score if metric == "rocauc" else average_precision_score
        vals = []
        for t in range(y_true.shape[1]):
            ok = ~np.isnan(y_true[:, t])
            if ok.any() and 0 < y_true[ok, t].sum() < ok.sum():
                vals.append(fn(y_true[ok, t], y_pred[ok, t]))
        if not vals:
            raise TrainingError(f"{metric}: no target has both classes in this split")
        return float(np.mean(vals))
    ok = ~np.isnan(y_true)
    err = y_pred[ok] - y_true[ok]
    if metric == "rmse":
        return float(np.sqrt(np.mean(err ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(err)))
    raise ConfigError(f"no definition of metric {metric!r} for a custom dataset")


def graph_metrics(dataset: Any, y_true: torch.Tensor, y_pred: torch.Tensor) -> Dict[str, float]:
    """``{eval_metric: value}`` of predictions, through OGB's ``Evaluator`` for official OGB
    datasets (the same numbers OGB's leaderboards use), else the same definitions locally.

    Args:
        dataset: a :class:`~graphkit.datasets.GraphPropDataset` (``eval_metric``, ``evaluator()``).
        y_true: labels ``[G, T]`` (NaN: unlabelled).
        y_pred: predictions ``[G, T]`` (logits or scores for classification).
    """
    yt, yp = y_true.detach().cpu().numpy(), y_pred.detach().cpu().float().numpy()
    metric = str(dataset.eval_metric)
    if (getattr(dataset, "meta", None) or {}).get("evaluator"):
        evaluator = dataset.evaluator()
        out = evaluator.eval({"y_true": yt, "y_pred": yp})
        return {k: float(v) for k, v in out.items()}
    return {metric: _own_metric(metric, yt, yp)}


def check_graph_data(dataset: Any) -> None:
    """Raise :class:`ConfigError` unless ``dataset`` is a graph-property dataset with training graphs."""
    for name in ("split_idx", "task_type", "num_tasks", "eval_metric", "collection"):
        if not hasattr(dataset, name):
            raise ConfigError(f"{type(dataset).__name__} is not a graph-property dataset: it has no {name!r} "
                              "(graph-level models train on an ogbg-* name or a GraphPropDataset from "
                              "graphkit.datasets.load, e.g. 'ogbg-molbace', or an ogb-layout folder with "
                              "meta_dict.json)")
    if len(dataset.split_idx["train"]) == 0:
        raise ConfigError(f"{getattr(dataset, 'name', 'the dataset')} has no training graphs")


class GraphPropTask(TrainingTask):
    """Mini-batch graph property prediction (see the module docstring).

    Args:
        dataset: a :class:`~graphkit.datasets.GraphPropDataset`.
    """

    name = "graph"
    loss_column = "train_loss"

    def check(self, model: Any, cfg: Any) -> None:
        if getattr(model, "task", None) != "graph":
            raise ConfigError(f"{type(model).__name__} is not a graph-property model (task != 'graph')")
        check_graph_data(self.dataset)
        if int(getattr(model, "num_tasks", self.dataset.num_tasks)) != int(self.dataset.num_tasks):
            raise ConfigError(f"{type(model).__name__} predicts {model.num_tasks} targets, "
                              f"{self.dataset.name} has {self.dataset.num_tasks}")

    @property
    def metric(self) -> str:
        """The dataset's evaluation metric (``"rocauc"``, ``"rmse"``, ...)."""
        return str(self.dataset.eval_metric)

    @property
    def history_columns(self) -> List[str]:  # type: ignore[override]
        """``epoch, train_loss, valid_<metric>, seconds``."""
        return ["epoch", "train_loss", f"valid_{self.metric}", "seconds"]

    def setup(self, trainer: Any) -> None:
        from ..datasets.graph_collection import EpochOrder

        self.cfg = trainer.cfg
        self.device = trainer.device
        trainer.model.to(trainer.device)
        self.collection = self.dataset.collection
        self.classify = is_classification(self.dataset.task_type)
        self.train_ids = self.dataset.split_idx["train"].long()
        self._order = EpochOrder(self.train_ids, self.cfg.seed)

    def teardown(self) -> None:
        self._order = None  # type: ignore[assignment]

    def num_batches(self) -> int:
        from ..datasets.graph_collection import training_batches

        return training_batches(len(self.train_ids), self.cfg.batch_size)

    def loss(self, pred: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, int]:
        """``(mean loss over labelled entries, their count)``.

        Args:
            pred: model outputs ``[B, T]``.
            y: labels ``[B, T]`` (NaN: unlabelled).
        """
        labelled = ~torch.isnan(y)
        n = int(labelled.sum())
        if n == 0:
            return pred.sum() * 0.0, 0
        p, t = pred[labelled], y[labelled]
        loss = F.binary_cross_entropy_with_logits(p, t) if self.classify else F.mse_loss(p, t)
        return loss, n

    def train_batch(self, trainer: Any, epoch: int, batch: int) -> Tuple[torch.Tensor, float, float]:
        from ..datasets.graph_collection import batch_ids

        b = self.collection.batch(batch_ids(self._order(epoch), batch, self.cfg.batch_size)).to(self.device)
        trainer.model.train()
        loss, n = self.loss(trainer.model(b), b.y)
        return loss, float(loss.detach()) * n, float(n)

    def has_validation(self) -> bool:
        return len(self.dataset.split_idx["valid"]) > 0

    @torch.no_grad()
    def predict(self, model: Any, part: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(labels, predictions)`` of the split ``part`` in eval mode (CPU tensors).

        Args:
            model: the model.
            part: ``"train"``, ``"valid"`` or ``"test"``.
        """
        model.eval()
        ids = self.dataset.split_idx[part].long()
        preds, ys = [], []
        for b in self.collection.batches(ids, self.cfg.eval_batch_size):
            preds.append(model(b.to(self.device)).float().cpu())
            ys.append(b.y)
        if not preds:
            return torch.zeros(0, self.dataset.num_tasks), torch.zeros(0, self.dataset.num_tasks)
        return torch.cat(ys), torch.cat(preds)

    def validate(self, trainer: Any, epoch: int) -> Dict[str, float]:
        y, pred = self.predict(trainer.model, "valid")
        score = graph_metrics(self.dataset, y, pred)[self.metric]
        if not math.isfinite(score):
            raise TrainingError(f"non-finite validation {self.metric} {score} at epoch {epoch}")
        return {f"valid_{self.metric}": score}

    def selection_key(self, val: Dict[str, float]) -> Tuple[float, ...]:
        v = val[f"valid_{self.metric}"]
        return (-v,) if self.metric in LOWER_IS_BETTER else (v,)

    def selection_text(self) -> str:
        return f"{'lowest' if self.metric in LOWER_IS_BETTER else 'highest'} validation {self.metric}"

    def selection_record(self, best: Optional[Dict[str, float]]) -> Dict[str, Any]:
        return {"best_valid": best[f"valid_{self.metric}"] if best else None, "select_metric": self.metric}

    def test(self, trainer: Any) -> Dict[str, float]:
        y, pred = self.predict(trainer.model, "test")
        return graph_metrics(self.dataset, y, pred)

    def format_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        row["seconds"] = row["seconds"] + row.pop("eval_seconds", 0.0)
        row.setdefault(f"valid_{self.metric}", float("nan"))
        return row

    def record_extras(self, trainer: Any) -> Dict[str, Any]:
        init = getattr(trainer.model, "_init_from", None)
        return {"task_type": self.dataset.task_type, "eval_metric": self.metric,
                "num_graphs": int(self.dataset.num_graphs), "init_from": init}


class GraphPropTrainer(Trainer):
    """The engine's :class:`~graphkit.training.engine.Trainer` on a :class:`GraphPropTask`.

    Args:
        model: a :class:`~graphkit.models.graph_level.GraphModel` (hyper-parameters set).
        dataset: a :class:`~graphkit.datasets.GraphPropDataset`.
        config: training options.
        callbacks: see :class:`~graphkit.training.engine.Trainer`.
    """

    def __init__(self, model: Any, dataset: Any, config: Optional[GraphTrainConfig] = None,
                 callbacks: Optional[List[Any]] = None) -> None:
        super().__init__(model, GraphPropTask(dataset), config or GraphTrainConfig(), callbacks)


def load_encoder_into(model: Any, source: Any) -> Dict[str, Any]:
    """Copy a pre-trained encoder (:func:`graphkit.pretrain`'s result or its saved folder) into
    ``model.encoder``; returns the provenance recorded in the run.

    Args:
        model: a :class:`~graphkit.models.graph_level.GraphModel`.
        source: a :class:`~graphkit.pretraining.PretrainResult` or a folder it was saved to.

    Raises:
        CheckpointError: an unreadable folder, or an encoder of another architecture (named).
    """
    from ..pretraining import PretrainResult

    res = source if isinstance(source, PretrainResult) else PretrainResult.load(source)
    want, got = model.encoder_config(), res.encoder_config
    diff = {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}
    if diff:
        text = ", ".join(f"{k}: saved {a!r}, model {b!r}" for k, (a, b) in sorted(diff.items()))
        raise CheckpointError(f"init_from {res.source or 'result'}: the pre-trained encoder does not fit "
                              f"{type(model).__name__} ({text})")
    model.encoder.load_state_dict(res.encoder_state, strict=True)
    return {"strategy": res.strategy, "corpus": res.corpus, "source": res.source, "epochs": res.epochs,
            "seed": res.seed}


def fit_graph(model: Any, dataset: Any, *, data_dir: Any = None, preset: Union[bool, str] = True, seed: int = 0,
              resume: bool = False, callbacks: Optional[List[Any]] = None, init_from: Any = None,
              **hparams: Any) -> FitResult:
    """:func:`graphkit.fit` for graph-property models (``model.task == "graph"``: GIN, GCNGraph).

    Args:
        model: a :class:`~graphkit.models.graph_level.GraphModel` subclass, its registered name
            (``"gin"``, ``"gcn-graph"``) or a built instance.
        dataset: an ``ogbg-*`` name or a loaded :class:`~graphkit.datasets.GraphPropDataset`.
        data_dir: where dataset files live (default ``$GRAPHKIT_DATA``).
        preset: ``True``/``"paper"`` (Hu et al. / OGB settings) or ``False``.
        seed: seed of initialisation, dropout and batch order.
        resume: continue from ``checkpoint_dir``.
        callbacks: see :mod:`graphkit.training.callbacks`.
        init_from: a pre-trained encoder (:func:`graphkit.pretrain` result or its folder).
        **hparams: model hyper-parameters and :class:`GraphTrainConfig` fields.
    """
    from . import _resolve_model

    cls, instance = _resolve_model(model)
    if isinstance(dataset, (str, Path)):
        from .. import datasets as gk_datasets

        dataset = gk_datasets.load(str(dataset), root=data_dir)
    check_graph_data(dataset)
    instance, cfg = build_run(cls, instance, dataset, hparams, seed, preset, GraphTrainConfig, ("num_tasks",),
                              lambda **kw: cls(**{**cls.data_args(dataset), **kw}))
    if init_from is not None:
        instance._init_from = load_encoder_into(instance, init_from)
    return GraphPropTrainer(instance, dataset, cfg, callbacks=callbacks).fit(resume=resume)
