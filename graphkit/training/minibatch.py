"""Mini-batch node classification: sampled inputs, any feature store, optional DistributedDataParallel.

The trainer serves models that consume sampled mini-batches instead of the whole graph
(:class:`~graphkit.models.largegt.LargeGT`, ...).  Such a model implements three hooks:

``feature_table(graph, x) -> Tensor [N, D]``
    the per-node table the feature store serves (LargeGT: ``[X, ÂX, Â²X]``).
``make_sampler(graph, seed) -> sampler``
    an object with ``sample(nodes, epoch)`` (LargeGT: its token sampler).
``batch_args(store, sampled, nodes, device, epoch) -> tuple``
    the positional arguments of ``model(*args)``, which returns logits ``[len(nodes), C]``.

Protocol (the full-batch node trainer's, per mini-batch): every epoch shuffles the training
nodes (seeded by ``(seed, epoch)``), takes one Adam step per batch of ``batch_size`` nodes
on the mean cross-entropy, then evaluates the validation nodes.  The selected epoch has
the best validation accuracy (ties: lower loss) or the lowest validation loss; training
stops after ``patience`` epochs without improvement, ``epochs`` epochs or ``max_time``
seconds; the selected weights are restored and the test nodes are evaluated once.

Distributed training: run under ``torchrun`` (or after ``torch.distributed.init_process_group``).
Each rank takes a strided shard of every global batch (:func:`graphkit.sampling.shard_batches`),
the model is wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on GPU), and each rank's
loss is ``sum of its cross-entropies × world_size / global batch size``.  DDP averages the
gradients over ranks, which gives exactly the gradient of the mean loss over the global batch,
so with dropout off R processes follow the same trajectory as one process with the same
global batches, up to floating-point summation order (LargeGT's codebook statistics are
all-reduced too).  Validation and test metrics are reduced over ranks; every rank returns the
same :class:`FitResult`.

Command line (``torchrun --nproc_per_node 2 -m graphkit.training.minibatch --model largegt
--dataset cora --set batch_size=256``): see :func:`main`.
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple, Type, Union

import numpy as np
import torch
import torch.nn.functional as F

from .hparams import merge_preset, split_hparams
from ..exceptions import ConfigError, TrainingError
from ..sampling import shard_batches
from ..utils import environment_record, seed_everything
from .node import _better, row_normalize, SELECT_CHOICES
from .result import FitResult

__all__ = ["MiniBatchTrainConfig", "MiniBatchTrainer", "fit_minibatch", "init_distributed", "main"]

STORE_CHOICES = ("memory", "memmap", "zerocopy")


@dataclass
class MiniBatchTrainConfig:
    """Training hyper-parameters of a mini-batch run.

    Args:
        lr: Adam learning rate.
        weight_decay: Adam (L2) weight decay.
        epochs: maximum number of passes over the training nodes.
        patience: stop after this many epochs without a better selected epoch (0 = never).
        select: ``"val_acc"`` or ``"val_loss"`` (as the full-batch trainer).
        batch_size: training nodes per global mini-batch (split over ranks when distributed).
        eval_batch_size: nodes per evaluation batch (default ``batch_size``).
        seed: seed of initialisation, shuffling, sampling and dropout.
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available; under torchrun
            with CUDA, ``cuda:LOCAL_RANK``).
        normalize_features: divide every feature row by its sum first.
        feature_store: ``"memory"``, ``"memmap"`` (table written to ``store_path`` or a
            temporary file) or ``"zerocopy"`` (GPU reads the pinned host table); ignored when
            the trainer is given a store.
        store_path: file of the memmap store.
        resample: draw new samples every epoch (default False: one fixed draw, as LargeGT's
            authors precompute their sequences once).
        progress: show a progress bar (rank 0).
        max_time: stop training after this many seconds.
        num_threads: torch CPU threads (default: leave torch's setting).
        max_batches: cap on training batches per epoch (benchmarks; None = all).
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 100
    patience: int = 20
    select: str = "val_acc"
    batch_size: int = 1024
    eval_batch_size: Optional[int] = None
    seed: int = 0
    device: Optional[str] = None
    normalize_features: bool = False
    feature_store: str = "memory"
    store_path: Optional[str] = None
    resample: bool = False
    progress: bool = True
    max_time: Optional[float] = None
    num_threads: Optional[int] = None
    max_batches: Optional[int] = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive finite number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.eval_batch_size is not None and (not isinstance(self.eval_batch_size, (int, np.integer))
                                                 or self.eval_batch_size < 1):
            raise ConfigError(f"eval_batch_size must be a positive integer, got {self.eval_batch_size!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, (int, np.integer)) or self.patience < 0:
            raise ConfigError(f"patience must be an integer >= 0, got {self.patience!r}")
        if self.select not in SELECT_CHOICES:
            raise ConfigError(f"select must be one of {SELECT_CHOICES}, got {self.select!r}")
        if self.feature_store not in STORE_CHOICES:
            raise ConfigError(f"feature_store must be one of {STORE_CHOICES}, got {self.feature_store!r}")
        if self.max_time is not None and not (isinstance(self.max_time, (int, float)) and self.max_time > 0):
            raise ConfigError(f"max_time must be a positive number of seconds, got {self.max_time!r}")
        if self.max_batches is not None and (not isinstance(self.max_batches, (int, np.integer)) or self.max_batches < 1):
            raise ConfigError(f"max_batches must be a positive integer, got {self.max_batches!r}")


# --------------------------------------------------------------------------- distributed helpers
def _dist():
    import torch.distributed as dist

    return dist


def _world() -> Tuple[int, int]:
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(backend: Optional[str] = None) -> Tuple[int, int]:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``) unless already initialised; returns ``(rank, world_size)``.

    The backend is nccl when CUDA is available, gloo otherwise; with CUDA, the current
    device becomes ``cuda:LOCAL_RANK``.  Without those variables it does nothing (rank 0 of 1).
    """
    dist = _dist()
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return 0, 1
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def _all_reduce_sum(values: List[float], device: torch.device) -> List[float]:
    rank, world = _world()
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    _dist().all_reduce(t)
    return t.tolist()


# --------------------------------------------------------------------------- trainer
class MiniBatchTrainer:
    """Trains a sampled-input node model on a node dataset (see the module docstring).

    Args:
        model: a model with ``feature_table``, ``make_sampler`` and ``batch_args``
            (e.g. :class:`~graphkit.models.largegt.LargeGT`); hyper-parameters set.
        dataset: a :class:`~graphkit.datasets.NodeDataset` (graph, x, y, splits).
        config: training hyper-parameters.
        store: an already built feature store holding ``model.feature_table(graph, x)``
            (e.g. a :class:`~graphkit.feature_store.MemMapStore` built out of core); by
            default one is built from ``config.feature_store``.
    """

    def __init__(self, model: Any, dataset: Any, config: Optional[MiniBatchTrainConfig] = None,
                 store: Any = None) -> None:
        config = config or MiniBatchTrainConfig()
        config.validate()
        for hook in ("feature_table", "make_sampler", "batch_args"):
            if not callable(getattr(model, hook, None)):
                raise ConfigError(f"{type(model).__name__} cannot be trained in mini-batches: it has no {hook}()")
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
        self.store = store
        self._own_store = store is None
        self.rank, self.world_size = _world()
        if config.device is not None:
            dev = torch.device(config.device)
        elif torch.cuda.is_available():
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if self.world_size > 1 else 0)
        else:
            dev = torch.device("cpu")
        self.device = dev

    # ------------------------------------------------------------------ pieces
    def _build_store(self) -> Any:
        from ..feature_store import InMemoryStore, MemMapStore, ZeroCopyStore

        ds, cfg = self.dataset, self.cfg
        if ds.x is None:
            raise ConfigError(f"{getattr(ds, 'name', 'the dataset')} has no node features (dataset.x is None)")
        x = ds.x.to_dense() if ds.x.layout != torch.strided else ds.x
        x = x.to(torch.float32)
        if cfg.normalize_features:
            x = row_normalize(x)
        table = self.model.feature_table(ds.graph, x)
        if cfg.feature_store == "memory":
            return InMemoryStore(table.to(self.device))
        if cfg.feature_store == "zerocopy":
            return ZeroCopyStore(table.cpu().contiguous(), device=self.device if self.device.type == "cuda" else None)
        path = cfg.store_path
        if path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="graphkit-store-")
            path = os.path.join(self._tmpdir.name, "features.gkf")
        if self.world_size > 1 and cfg.store_path is not None:
            if self.rank == 0:
                MemMapStore.from_tensor(path, table).close()
            _dist().barrier()
            return MemMapStore(path, device=self.device)
        return MemMapStore.from_tensor(path, table, device=self.device)

    def _wrap(self) -> Any:
        if self.world_size == 1:
            return self.model
        from torch.nn.parallel import DistributedDataParallel as DDP

        import inspect

        ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers (LargeGT's codebook) are kept identical by all-reducing their statistics, so
        # they are synchronised once at construction and never re-broadcast from rank 0.
        if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
            return DDP(self.model, device_ids=ids, forward_sync_buffers=False)
        return DDP(self.model, device_ids=ids, broadcast_buffers=False)

    def _batches(self, nodes: torch.Tensor, batch_size: int, shuffle: bool,
                 epoch: int) -> List[Tuple[torch.Tensor, torch.Tensor, int]]:
        """This rank's shard of every global batch of ``nodes``: (node ids, their positions in
        ``nodes``, global batch size)."""
        n = int(nodes.shape[0])
        shards = shard_batches(n, batch_size, shuffle=shuffle, seed=self.cfg.seed, epoch=epoch,
                               rank=self.rank, world_size=self.world_size)
        out = []
        for b, pos in enumerate(shards):
            p = torch.from_numpy(pos)
            out.append((nodes[p], p, min(batch_size, n - b * batch_size)))
        return out

    @torch.no_grad()
    def evaluate(self, nodes: torch.Tensor, sampler: Any, epoch: int = 0,
                 return_predictions: bool = False) -> Tuple[float, float, Optional[torch.Tensor]]:
        """(mean loss, accuracy, predictions in ``nodes`` order or None) over ``nodes``, all ranks.

        Args:
            nodes: the nodes to evaluate.
            sampler: the model's sampler (``model.make_sampler``).
            epoch: the epoch whose samples to use.
            return_predictions: also return the predicted classes.
        """
        self.model.eval()
        y = self.dataset.y
        bs = self.cfg.eval_batch_size or self.cfg.batch_size
        loss_sum, correct = 0.0, 0.0
        preds: List[torch.Tensor] = []
        ids: List[torch.Tensor] = []
        for part, pos, _ in self._batches(nodes, bs, shuffle=False, epoch=0):
            sampled = sampler.sample(part, 0 if not self.cfg.resample else epoch)
            out = self.model(*self.model.batch_args(self.store, sampled, part, self.device, epoch))
            target = y[part].to(out.device)
            loss_sum += float(F.cross_entropy(out, target, reduction="sum")) if len(part) else 0.0
            pred = out.argmax(dim=1)
            correct += float((pred == target).sum())
            if return_predictions:
                preds.append(pred.cpu())
                ids.append(pos)
        n = float(nodes.shape[0])
        loss_sum, correct = _all_reduce_sum([loss_sum, correct], self._reduce_device())
        pred_all = None
        if return_predictions:
            p = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
            i = torch.cat(ids) if ids else torch.empty(0, dtype=torch.long)
            if self.world_size > 1:
                from ..models.largegt import _all_gather_varlen

                dev = self._reduce_device()
                p = _all_gather_varlen(p.to(dev)).cpu()
                i = _all_gather_varlen(i.to(dev)).cpu()
            pred_all = torch.empty(len(nodes), dtype=torch.long)
            pred_all[i] = p
        if n == 0:
            return float("nan"), float("nan"), pred_all
        return loss_sum / n, correct / n, pred_all

    def _reduce_device(self) -> torch.device:
        # nccl reduces CUDA tensors only; gloo reduces CPU tensors.
        if self.world_size > 1 and _dist().get_backend() == "nccl":
            return self.device
        return torch.device("cpu")

    # ------------------------------------------------------------------ main loop
    def fit(self) -> FitResult:
        """Train, select on validation, evaluate on test once; return a :class:`FitResult`."""
        import pandas as pd
        from tqdm.auto import tqdm

        from ..metrics import macro_f1

        cfg, ds = self.cfg, self.dataset
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        seed_everything(cfg.seed)
        self.model.prepare(ds)
        self.model.to(self.device)
        if self.store is None:
            self.store = self._build_store()
        sampler = self.model.make_sampler(ds.graph, cfg.seed)
        net = self._wrap()
        opt = torch.optim.Adam(self.model.parameter_groups(cfg.weight_decay), lr=cfg.lr)
        y = ds.y
        train_idx, val_idx, test_idx = (torch.as_tensor(i, dtype=torch.long).cpu()
                                        for i in (ds.train_idx, ds.val_idx, ds.test_idx))
        has_val = len(val_idx) > 0

        history: List[Dict[str, Any]] = []
        best: Tuple[float, float] = (math.inf, -math.inf)
        best_epoch, best_state, bad, stopped = 0, None, 0, "epochs"
        t_start = time.perf_counter()
        bar = tqdm(range(1, cfg.epochs + 1), disable=not cfg.progress or self.rank != 0,
                   desc=type(self.model).__name__, unit="epoch")
        try:
            for epoch in bar:
                t0 = time.perf_counter()
                self.model.train()
                loss_sum, sample_s = 0.0, 0.0
                batches = self._batches(train_idx, cfg.batch_size, shuffle=True, epoch=epoch)
                if cfg.max_batches is not None:
                    batches = batches[: cfg.max_batches]
                seen = 0
                for part, _, global_size in batches:
                    ts = time.perf_counter()
                    sampled = sampler.sample(part, epoch if cfg.resample else 0)
                    args = self.model.batch_args(self.store, sampled, part, self.device, epoch)
                    sample_s += time.perf_counter() - ts
                    out = net(*args)
                    ce = F.cross_entropy(out, y[part].to(out.device), reduction="sum")
                    loss = ce * (self.world_size / global_size)
                    if not torch.isfinite(loss):
                        raise TrainingError(f"non-finite training loss {loss.item()} at epoch {epoch}")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    loss_sum += float(ce.detach())
                    seen += global_size
                (loss_sum,) = _all_reduce_sum([loss_sum], self._reduce_device())
                row: Dict[str, Any] = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1)}
                if has_val:
                    val_loss, val_acc, _ = self.evaluate(val_idx, sampler, epoch)
                    if not math.isfinite(val_loss):
                        raise TrainingError(f"non-finite validation loss {val_loss} at epoch {epoch}")
                    row.update(val_loss=val_loss, val_acc=val_acc)
                    if _better(cfg.select, val_loss, val_acc, best):
                        best, best_epoch, bad = (val_loss, val_acc), epoch, 0
                        best_state = copy.deepcopy(self.model.state_dict())
                    else:
                        bad += 1
                    bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_acc=f"{val_acc:.4f}")
                else:
                    row.update(val_loss=float("nan"), val_acc=float("nan"))
                row["sample_seconds"] = sample_s
                row["seconds"] = time.perf_counter() - t0
                history.append(row)
                if has_val and cfg.patience and bad >= cfg.patience:
                    stopped = "early stopping"
                    break
                if cfg.max_time is not None:
                    (elapsed,) = _all_reduce_sum([time.perf_counter() - t_start], self._reduce_device())
                    if elapsed / self.world_size >= cfg.max_time:  # the mean over ranks: all ranks agree
                        stopped = "max_time"
                        break
        finally:
            bar.close()
        train_seconds = time.perf_counter() - t_start
        if best_state is not None:
            self.model.load_state_dict(best_state)
        else:
            best_epoch = history[-1]["epoch"]

        test_loss, test_acc, pred = self.evaluate(test_idx, sampler, return_predictions=True)
        y_test = y[test_idx].cpu()
        metrics = {"accuracy": test_acc,
                   "macro_f1": macro_f1(pred, y_test, num_classes=int(ds.num_classes)) if len(test_idx) else float("nan")}
        if len(test_idx):
            from ..datasets.ogb_loader import ogb_node_metrics

            metrics.update(ogb_node_metrics(ds, F.one_hot(pred.long(), int(ds.num_classes)).float(), test_idx.cpu()))
        split = ds.split_record() if hasattr(ds, "split_record") else {"dataset": getattr(ds, "name", None)}
        record = {
            "task": "node",
            "trainer": "minibatch",
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
            "world_size": self.world_size,
            "feature_store": type(self.store).__name__,
            "sampler": repr(sampler),
            **environment_record(self.device),
        }
        cols = ["epoch", "train_loss", "val_loss", "val_acc", "sample_seconds", "seconds"]
        return FitResult(self.model, metrics, pd.DataFrame(history, columns=cols), record)

    def close(self) -> None:
        """Close the feature store the trainer built (a store passed in is left open)."""
        if self._own_store and self.store is not None:
            self.store.close()
            self.store = None
        tmp = getattr(self, "_tmpdir", None)
        if tmp is not None:
            tmp.cleanup()
            self._tmpdir = None


# --------------------------------------------------------------------------- fit entry point
def _split_hparams(cls: Type, hparams: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    return split_hparams(cls, MiniBatchTrainConfig, hparams, data_args=("in_channels", "num_classes"),
                         extra_options=("split", "split_seed"))


def fit_minibatch(model: Any, dataset: Any, *, data_dir: Any = None, preset: Union[bool, str] = True, seed: int = 0,
                  store: Any = None, **hparams: Any) -> FitResult:
    """:func:`graphkit.fit` for mini-batch node models (``model.trainer == "minibatch"``).

    Same arguments as :func:`graphkit.training.node.fit_node`; training options are
    :class:`MiniBatchTrainConfig` fields, and ``store`` passes a ready feature store.
    Under ``torchrun`` the process group is joined first (:func:`init_distributed`).

    Args:
        model: a mini-batch model class, its registered name, or a built instance.
        dataset: a dataset name (with ``split``/``split_seed`` in ``hparams``) or a loaded
            node dataset.
        data_dir: where dataset files live (default ``$GRAPHKIT_DATA``).
        preset: ``True``/``"paper"``, ``"fast"`` or ``False`` (see :func:`graphkit.fit`).
        seed: random seed of the run.
        store: a ready feature store (default: built from ``feature_store``).
        **hparams: model hyper-parameters and :class:`MiniBatchTrainConfig` fields.
    """
    from . import _resolve_model
    from .node import _load_node_dataset

    init_distributed()
    cls, instance = _resolve_model(model)
    split = hparams.pop("split", None)
    split_seed = hparams.pop("split_seed", None)
    if split == "random" and split_seed is None:
        split_seed = seed
    ds = _load_node_dataset(dataset, data_dir, split, split_seed)
    if not hasattr(ds, "train_idx") or not hasattr(ds, "num_classes"):
        raise ConfigError(f"{cls.__name__} needs a node-classification dataset, got {type(ds).__name__}")
    merged = merge_preset(cls, ds, hparams, seed, use_preset=preset if instance is None else False)
    model_kw, train_kw = _split_hparams(cls, merged)
    cfg = MiniBatchTrainConfig(**train_kw)
    cfg.validate()
    seed_everything(seed)
    if instance is None:
        instance = cls(cls.input_dim(ds), int(ds.num_classes), **model_kw)
    elif model_kw:
        raise ConfigError(f"model hyper-parameters {sorted(model_kw)} cannot be applied to an already built model")
    trainer = MiniBatchTrainer(instance, ds, cfg, store=store)
    try:
        return trainer.fit()
    finally:
        trainer.close()


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m graphkit.training.minibatch`` / ``torchrun ... -m graphkit.training.minibatch``.

    Options: ``--model NAME`` (registered, e.g. ``largegt``), ``--dataset NAME``,
    ``--seed N``, ``--set key=value`` (repeatable; values parsed as JSON when possible),
    ``--out DIR`` (rank 0 saves the result there).

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).
    """
    import argparse
    import json

    from ..models import get_model

    ap = argparse.ArgumentParser(prog="graphkit.training.minibatch")
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    hp: Dict[str, Any] = {}
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            hp[k] = json.loads(v)
        except json.JSONDecodeError:
            hp[k] = v
    try:
        cls = get_model(args.model)
    except ConfigError:
        if args.model.lower() == "largegt":
            from ..models.largegt import LargeGT as cls  # noqa: N813 - registration may be pending
        else:
            raise
    res = fit_minibatch(cls, args.dataset, seed=args.seed, **hp)
    rank, world = _world()
    if rank == 0:
        print(f"{res!r}  (world_size={world}, best epoch {res.record['best_epoch']})", flush=True)
        if args.out:
            res.save(args.out)
    if world > 1:
        _dist().destroy_process_group()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
