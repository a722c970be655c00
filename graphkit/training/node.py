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

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch
import torch.nn.functional as F

from .hparams import merge_preset, split_hparams
from ..exceptions import ConfigError, TrainingError
from ..utils import environment_record, seed_everything
from .result import FitResult

__all__ = [
    "NodeTrainConfig",
    "NodeClassificationTrainer",
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
class NodeTrainConfig:
    """Training hyper-parameters of a node-classification run.

    Args:
        lr: Adam learning rate.
        weight_decay: Adam (L2) weight decay; models may restrict it to some parameters
            (:meth:`NodeModel.parameter_groups`).
        epochs: maximum number of epochs (one full-batch step each).
        patience: stop after this many epochs without a better selected epoch (0 = never).
        select: ``"val_loss"`` (lowest validation loss) or ``"val_acc"`` (highest
            validation accuracy, ties broken by validation loss).
        seed: random seed (initialisation, dropout).
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        normalize_features: divide every feature row by its sum before training
            (idempotent; rows summing to 0 stay 0).  Only for dense tensor features.
        progress: show a progress bar.
        max_time: stop training after this many seconds (the selected model so far is kept).
        num_threads: torch CPU threads (default: leave torch's setting).
    """

    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 1000
    patience: int = 100
    select: str = "val_loss"
    seed: int = 0
    device: Optional[str] = None
    normalize_features: bool = False
    progress: bool = True
    max_time: Optional[float] = None
    num_threads: Optional[int] = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive finite number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) or self.epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {self.epochs!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, (int, np.integer)) or self.patience < 0:
            raise ConfigError(f"patience must be an integer >= 0, got {self.patience!r}")
        if self.select not in SELECT_CHOICES:
            raise ConfigError(f"select must be one of {SELECT_CHOICES}, got {self.select!r}")
        if self.max_time is not None and not (isinstance(self.max_time, (int, float)) and self.max_time > 0):
            raise ConfigError(f"max_time must be a positive number of seconds, got {self.max_time!r}")


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


class NodeClassificationTrainer:
    """Trains a :class:`~graphkit.models.base.NodeModel` full-batch on a node dataset.

    Args:
        model: the model (hyper-parameters set); :meth:`NodeModel.prepare` is called in
            :meth:`fit`.
        dataset: a :class:`graphkit.datasets.NodeDataset` (or subclass, e.g. ``CatGCNData``)
            with ``graph``, ``y``, ``train_idx``, ``val_idx``, ``test_idx``,
            ``num_classes`` and ``split_record()``.
        config: training hyper-parameters.
    """

    def __init__(self, model: Any, dataset: Any, config: Optional[NodeTrainConfig] = None) -> None:
        config = config or NodeTrainConfig()
        config.validate()
        if getattr(model, "task", None) != "node":
            raise ConfigError(f"{type(model).__name__} is not a node-classification model (task != 'node')")
        for name in ("graph", "y", "train_idx", "val_idx", "test_idx", "num_classes"):
            if not hasattr(dataset, name):
                raise ConfigError(f"{type(dataset).__name__} is not a node dataset: it has no {name!r}")
        if len(dataset.train_idx) == 0:
            raise ConfigError("the dataset has no training nodes")
        if dataset.y.dim() != 1:
            raise ConfigError(f"node classification needs 1-D labels, got shape {tuple(dataset.y.shape)}")
        self.model = model
        self.dataset = dataset
        self.cfg = config
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    # ------------------------------------------------------------------ pieces
    def _inputs(self) -> Any:
        x = self.model.node_inputs(self.dataset)
        if x is None:
            raise ConfigError(f"{getattr(self.dataset, 'name', 'the dataset')} has no node features for "
                              f"{type(self.model).__name__} (dataset.x is None)")
        if self.cfg.normalize_features:
            if not isinstance(x, torch.Tensor):
                raise ConfigError(f"normalize_features needs tensor features, got {type(x).__name__}")
            x = row_normalize(x.to(torch.float32))
        if (bool(getattr(self.model, "sparse_input", False)) and isinstance(x, torch.Tensor) and x.dim() == 2
                and x.layout == torch.strided and x.numel() > 0
                and torch.count_nonzero(x).item() <= SPARSE_INPUT_DENSITY * x.numel()):
            x = _to_csr(x.to(torch.float32))
        return _move(x, self.device)

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameter_groups(self.cfg.weight_decay), lr=self.cfg.lr)

    @staticmethod
    def _scores(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> Tuple[float, float]:
        loss = F.cross_entropy(logits[idx], y[idx]).item()
        acc = (logits[idx].argmax(dim=1) == y[idx]).float().mean().item() if len(idx) else float("nan")
        return loss, acc

    def _train_step(self, opt: torch.optim.Optimizer, x: Any, graph: Any, y: torch.Tensor,
                    train_idx: torch.Tensor, epoch: int) -> float:
        self.model.train()
        opt.zero_grad(set_to_none=True)
        logits = self.model(x, graph)
        loss = F.cross_entropy(logits[train_idx], y[train_idx])
        aux = self.model.auxiliary_loss()
        if aux is not None:
            loss = loss + aux
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite training loss {loss.item()} at epoch {epoch}")
        loss.backward()
        opt.step()
        return float(loss.detach())

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

    # ------------------------------------------------------------------ main loop
    def fit(self) -> FitResult:
        """Train, select on validation, evaluate on test once; return a :class:`FitResult`."""
        import pandas as pd
        from tqdm.auto import tqdm

        from ..datasets.ogb_loader import ogb_node_metrics
        from ..metrics import accuracy, macro_f1

        cfg, ds = self.cfg, self.dataset
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        seed_everything(cfg.seed)
        self.model.to(self.device)
        graph = ds.graph.to(self.device)
        x = self._inputs()
        y = ds.y.to(self.device)
        train_idx, val_idx, test_idx = (i.to(self.device) for i in (ds.train_idx, ds.val_idx, ds.test_idx))
        has_val = len(val_idx) > 0
        self.model.prepare(ds)
        opt = self._optimizer()

        history: List[Dict[str, Any]] = []
        best: Tuple[float, float] = (math.inf, -math.inf)
        best_epoch, best_state, bad, stopped = 0, None, 0, "epochs"
        t_start = time.perf_counter()
        bar = tqdm(range(1, cfg.epochs + 1), disable=not cfg.progress, desc=type(self.model).__name__, unit="epoch")
        for epoch in bar:
            t0 = time.perf_counter()
            train_loss = self._train_step(opt, x, graph, y, train_idx, epoch)
            row: Dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
            if has_val:
                logits = self.predict(x, graph)
                val_loss, val_acc = self._scores(logits, y, val_idx)
                if not math.isfinite(val_loss):
                    raise TrainingError(f"non-finite validation loss {val_loss} at epoch {epoch}")
                row.update(val_loss=val_loss, val_acc=val_acc)
                if _better(cfg.select, val_loss, val_acc, best):
                    best, best_epoch, bad = (val_loss, val_acc), epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                else:
                    bad += 1
                bar.set_postfix(loss=f"{train_loss:.4f}", val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.4f}")
            else:
                row.update(val_loss=float("nan"), val_acc=float("nan"))
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            if has_val and cfg.patience and bad >= cfg.patience:
                stopped = "early stopping"
                break
            if cfg.max_time is not None and time.perf_counter() - t_start >= cfg.max_time:
                stopped = "max_time"
                break
        bar.close()
        train_seconds = time.perf_counter() - t_start
        if best_state is not None:
            self.model.load_state_dict(best_state)
        else:
            best_epoch = history[-1]["epoch"]

        logits = self.predict(x, graph).cpu()
        y_cpu, test_cpu = ds.y.cpu(), ds.test_idx.cpu()
        metrics = {
            "accuracy": accuracy(logits[test_cpu], y_cpu[test_cpu]),
            "macro_f1": macro_f1(logits[test_cpu], y_cpu[test_cpu], num_classes=int(ds.num_classes)),
        }
        metrics.update(ogb_node_metrics(ds, logits[test_cpu], test_cpu))  # OGB datasets: ogb's Evaluator too
        split = ds.split_record() if hasattr(ds, "split_record") else {"dataset": getattr(ds, "name", None)}
        record = {
            "task": "node",
            "model": type(self.model).__name__,
            "hparams": self.model.hparams(),
            "train": {k: v for k, v in asdict(cfg).items() if k != "progress"},
            "seed": cfg.seed,
            **split,
            "selection": ("lowest validation loss" if cfg.select == "val_loss"
                          else "highest validation accuracy (ties: lower validation loss)")
            if has_val else "last epoch (no validation split)",
            "best_epoch": best_epoch,
            "best_val_loss": best[0] if has_val else None,
            "best_val_acc": best[1] if has_val else None,
            "epochs_run": history[-1]["epoch"],
            "stopped_by": stopped,
            "train_seconds": train_seconds,
            **environment_record(self.device),
        }
        cols = ["epoch", "train_loss", "val_loss", "val_acc", "seconds"]
        return FitResult(self.model, metrics, pd.DataFrame(history, columns=cols), record)


# --------------------------------------------------------------------------- fit entry point
DATASET_OPTIONS = ("split", "split_seed")


def _split_node_hparams(cls: Type, hparams: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    return split_hparams(cls, NodeTrainConfig, hparams, data_args=("in_channels", "num_classes"),
                         extra_options=DATASET_OPTIONS)


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
        **hparams: model hyper-parameters, :class:`NodeTrainConfig` fields, and, for a
            dataset given by name, ``split="public"|"random"`` and ``split_seed`` (default:
            ``seed``, so every seed of a random-split study gets its own split).
    """
    from . import _resolve_model

    cls, instance = _resolve_model(model)
    split = hparams.pop("split", None)
    split_seed = hparams.pop("split_seed", None)
    if split == "random" and split_seed is None:
        split_seed = seed
    ds = _load_node_dataset(dataset, data_dir, split, split_seed)
    if not hasattr(ds, "train_idx") or not hasattr(ds, "num_classes"):
        raise ConfigError(f"{cls.__name__} needs a node-classification dataset, got {type(ds).__name__}")
    merged = merge_preset(cls, ds, hparams, seed, use_preset=preset if instance is None else False)
    model_kw, train_kw = _split_node_hparams(cls, merged)
    cfg = NodeTrainConfig(**train_kw)
    cfg.validate()
    seed_everything(seed)
    if instance is None:
        instance = cls(cls.input_dim(ds), int(ds.num_classes), **model_kw)
    elif model_kw:
        raise ConfigError(f"model hyper-parameters {sorted(model_kw)} cannot be applied to an already built model")
    return NodeClassificationTrainer(instance, ds, cfg).fit()


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
