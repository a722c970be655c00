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

import dataclasses
import math
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..exceptions import ConfigError, TrainingError
from ..sampling import shard_batches
from .engine import EngineConfig, Trainer, TrainingTask
from .node import NodeSelection, SELECT_CHOICES, check_node_data, row_normalize
from .prefetch import Prefetcher, streams_for
from .result import FitResult

__all__ = ["MiniBatchTrainConfig", "MiniBatchTrainer", "MiniBatchNodeTask", "fit_minibatch", "init_distributed", "main"]

STORE_CHOICES = ("memory", "memmap", "zerocopy")


@dataclass
class MiniBatchTrainConfig(EngineConfig):
    """Training hyper-parameters of a mini-batch run (the shared ones are
    :class:`~graphkit.training.engine.EngineConfig`'s: ``optimizer``, ``scheduler``,
    ``checkpoint_dir``, ``max_time``, ``eval_every``, ...).

    Args:
        lr: learning rate.
        weight_decay: (L2) weight decay.
        epochs: maximum number of passes over the training nodes.
        patience: stop after this many validations without a better selected epoch (0 = never).
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
        max_batches: cap on training batches per epoch (benchmarks; None = all).
        prefetch: training batches prepared ahead (sampling on a CPU worker thread, feature
            gather on a side CUDA stream: :class:`~graphkit.training.prefetch.Prefetcher`);
            0 prepares each batch when it is needed.  The batches, and so the run, are the
            same either way.

    ``max_time`` is checked at epoch ends (every rank must agree when to stop).
    Checkpointing (``checkpoint_dir``) and resume work in a single process; under
    ``torchrun`` they are refused (:class:`ConfigError`).
    """

    lr: float = 1e-3
    epochs: int = 100
    patience: int = 20
    seed: int = 0
    select: str = "val_acc"
    batch_size: int = 1024
    eval_batch_size: Optional[int] = None
    normalize_features: bool = False
    feature_store: str = "memory"
    store_path: Optional[str] = None
    resample: bool = False
    max_batches: Optional[int] = None
    prefetch: int = 1

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        self.validate_common()
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.eval_batch_size is not None and (not isinstance(self.eval_batch_size, (int, np.integer))
                                                 or self.eval_batch_size < 1):
            raise ConfigError(f"eval_batch_size must be a positive integer, got {self.eval_batch_size!r}")
        if self.select not in SELECT_CHOICES:
            raise ConfigError(f"select must be one of {SELECT_CHOICES}, got {self.select!r}")
        if self.feature_store not in STORE_CHOICES:
            raise ConfigError(f"feature_store must be one of {STORE_CHOICES}, got {self.feature_store!r}")
        if self.max_batches is not None and (not isinstance(self.max_batches, (int, np.integer)) or self.max_batches < 1):
            raise ConfigError(f"max_batches must be a positive integer, got {self.max_batches!r}")
        if isinstance(self.prefetch, bool) or not isinstance(self.prefetch, (int, np.integer)) or self.prefetch < 0:
            raise ConfigError(f"prefetch must be an integer >= 0, got {self.prefetch!r}")


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


# --------------------------------------------------------------------------- task
class MiniBatchNodeTask(NodeSelection, TrainingTask):
    """Sampled mini-batch node classification (see the module docstring): batches of
    training nodes, the model's sampler, any feature store, optional DDP.

    Args:
        dataset: a :class:`~graphkit.datasets.NodeDataset` (graph, features, labels, split).
        store: a ready feature store (default: built from the config in :meth:`setup`).
    """

    name = "node"
    history_columns = ["epoch", "train_loss", "val_loss", "val_acc", "sample_seconds", "wait_seconds", "seconds"]
    cut_epochs_on_time = False  # ranks agree on stopping at epoch ends only

    def __init__(self, dataset: Any, store: Any = None) -> None:
        super().__init__(dataset)
        self.store = store
        self._own_store = store is None
        self.rank, self.world_size = _world()
        self._tmpdir: Any = None
        self._prefetcher: Optional[Prefetcher] = None
        self._prefetch_next: Optional[Tuple[int, int]] = None

    def check(self, model: Any, cfg: Any) -> None:
        for hook in ("feature_table", "make_sampler", "batch_args"):
            if not callable(getattr(model, hook, None)):
                raise ConfigError(f"{type(model).__name__} cannot be trained in mini-batches: it has no {hook}()")
        check_node_data(model, self.dataset)
        if self.world_size > 1 and cfg.checkpoint_dir:
            raise ConfigError("checkpoint_dir/resume are not supported under torchrun (world_size "
                              f"{self.world_size}); run in one process to checkpoint")

    # ---- pieces
    def _build_store(self, model: Any, device: torch.device) -> Any:
        from ..feature_store import InMemoryStore, MemMapStore, ZeroCopyStore

        ds, cfg = self.dataset, self.cfg
        if ds.x is None:
            raise ConfigError(f"{getattr(ds, 'name', 'the dataset')} has no node features (dataset.x is None)")
        x = ds.x.to_dense() if ds.x.layout != torch.strided else ds.x
        x = x.to(torch.float32)
        if cfg.normalize_features:
            x = row_normalize(x)
        table = model.feature_table(ds.graph, x)
        if cfg.feature_store == "memory":
            return InMemoryStore(table.to(device))
        if cfg.feature_store == "zerocopy":
            return ZeroCopyStore(table.cpu().contiguous(), device=device if device.type == "cuda" else None)
        path = cfg.store_path
        if path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="graphkit-store-")
            path = os.path.join(self._tmpdir.name, "features.gkf")
        if self.world_size > 1 and cfg.store_path is not None:
            if self.rank == 0:
                MemMapStore.from_tensor(path, table).close()
            _dist().barrier()
            return MemMapStore(path, device=device)
        return MemMapStore.from_tensor(path, table, device=device)

    def _wrap(self, model: Any, device: torch.device) -> Any:
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        import inspect

        ids = [device.index] if device.type == "cuda" else None
        # Buffers (LargeGT's codebook) are kept identical by all-reducing their statistics, so
        # they are synchronised once at construction and never re-broadcast from rank 0.
        if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
            return DDP(model, device_ids=ids, forward_sync_buffers=False)
        return DDP(model, device_ids=ids, broadcast_buffers=False)

    def batches(self, nodes: torch.Tensor, batch_size: int, shuffle: bool,
                epoch: int) -> List[Tuple[torch.Tensor, torch.Tensor, int]]:
        """This rank's shard of every global batch of ``nodes``: (node ids, their positions in
        ``nodes``, global batch size).

        Args:
            nodes: the nodes to batch.
            batch_size: nodes per global batch.
            shuffle: shuffle with the ``(seed, epoch)`` stream first.
            epoch: the epoch (shuffling seed).
        """
        n = int(nodes.shape[0])
        shards = shard_batches(n, batch_size, shuffle=shuffle, seed=self.cfg.seed, epoch=epoch,
                               rank=self.rank, world_size=self.world_size)
        out = []
        for b, pos in enumerate(shards):
            p = torch.from_numpy(pos)
            out.append((nodes[p], p, min(batch_size, n - b * batch_size)))
        return out

    def reduce_device(self, device: torch.device) -> torch.device:
        """Where to all-reduce: ``device`` under nccl (CUDA tensors only), else the CPU (gloo).

        Args:
            device: the training device.
        """
        if self.world_size > 1 and _dist().get_backend() == "nccl":
            return device
        return torch.device("cpu")

    # ---- engine hooks
    def setup(self, trainer: Any) -> None:
        ds, model, dev = self.dataset, trainer.model, trainer.device
        self.cfg, self.device = trainer.cfg, dev
        model.prepare(ds)
        model.to(dev)
        if self.store is None:
            self.store = self._build_store(model, dev)
        self.sampler = model.make_sampler(ds.graph, self.cfg.seed)
        self.net = self._wrap(model, dev)
        self.model = model
        self.train_idx, self.val_idx, self.test_idx = (torch.as_tensor(i, dtype=torch.long).cpu()
                                                       for i in (ds.train_idx, ds.val_idx, ds.test_idx))
        self._epoch_batches: Tuple[int, List[Any]] = (0, [])
        self.sample_seconds = self.wait_seconds = 0.0
        self.streams = streams_for(dev)

    def param_groups(self, model: Any, weight_decay: float) -> Any:
        return model.parameter_groups(weight_decay)

    def _train_batches(self, epoch: int) -> List[Any]:
        if self._epoch_batches[0] != epoch:
            batches = self.batches(self.train_idx, self.cfg.batch_size, shuffle=True, epoch=epoch)
            if self.cfg.max_batches is not None:
                batches = batches[: self.cfg.max_batches]
            self._epoch_batches = (epoch, batches)
            self.sample_seconds = self.wait_seconds = 0.0
        return self._epoch_batches[1]

    def num_batches(self) -> int:
        return len(self._train_batches(1))

    def _prepare(self, batches: List[Any], epoch: int, batch: int) -> Tuple[torch.Tensor, int, tuple]:
        """Batch ``batch`` of ``epoch``: its nodes, global size and model inputs (sampled tokens
        gathered from the store, moved to the device) -- a pure function of (epoch, batch)."""
        part, _, global_size = batches[batch]
        sampled = self.sampler.sample(part, epoch if self.cfg.resample else 0)
        return part, global_size, self.model.batch_args(self.store, sampled, part, self.device, epoch)

    def _next_prepared(self, epoch: int, batch: int) -> Tuple[torch.Tensor, int, tuple]:
        batches = self._train_batches(epoch)
        if not self.cfg.prefetch:
            t0 = time.perf_counter()
            out = self._prepare(batches, epoch, batch)
            self.sample_seconds += time.perf_counter() - t0
            self.wait_seconds = self.sample_seconds  # nothing overlaps: the loop waits for all of it
            return out
        if self._prefetcher is None or self._prefetch_next != (epoch, batch):
            self._close_prefetcher()
            self._prefetcher = Prefetcher(lambda b: self._prepare(batches, epoch, b), range(batch, len(batches)),
                                          depth=int(self.cfg.prefetch), streams=self.streams)
        b, out = next(self._prefetcher)
        self._prefetch_next = (epoch, b + 1)
        self.sample_seconds = self._prefetcher.prepare_seconds
        self.wait_seconds = self._prefetcher.wait_seconds
        return out

    def _close_prefetcher(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.close()  # waits for the worker: the sampler is not shared with evaluation
            self._prefetcher, self._prefetch_next = None, None

    def train_batch(self, trainer: Any, epoch: int, batch: int) -> Tuple[torch.Tensor, float, float]:
        part, global_size, args = self._next_prepared(epoch, batch)
        self.model.train()
        out = self.net(*args)
        ce = F.cross_entropy(out, self.dataset.y[part].to(out.device), reduction="sum")
        loss = ce * (self.world_size / global_size)
        return loss, float(ce.detach()), float(global_size)

    def reduce_epoch(self, loss_sum: float, count: float) -> Tuple[float, float]:
        self._close_prefetcher()
        (loss_sum,) = _all_reduce_sum([loss_sum], self.reduce_device(self.device))
        return loss_sum, count

    def time_is_up(self, elapsed: float, max_time: float) -> bool:
        (total,) = _all_reduce_sum([elapsed], self.reduce_device(self.device))
        return total / self.world_size >= max_time  # the mean over ranks: all ranks agree

    def row_extras(self) -> Dict[str, Any]:
        return {"sample_seconds": self.sample_seconds, "wait_seconds": self.wait_seconds}

    def teardown(self) -> None:
        self._close_prefetcher()

    def has_validation(self) -> bool:
        return len(self.dataset.val_idx) > 0

    def validate(self, trainer: Any, epoch: int) -> Dict[str, float]:
        val_loss, val_acc, _ = self.evaluate(self.val_idx, epoch)
        if not math.isfinite(val_loss):
            raise TrainingError(f"non-finite validation loss {val_loss} at epoch {epoch}")
        return {"val_loss": val_loss, "val_acc": val_acc}

    @torch.no_grad()
    def evaluate(self, nodes: torch.Tensor, epoch: int = 0,
                 return_predictions: bool = False) -> Tuple[float, float, Optional[torch.Tensor]]:
        """(mean loss, accuracy, predictions in ``nodes`` order or None) over ``nodes``, all ranks.

        Args:
            nodes: the nodes to evaluate.
            epoch: the epoch whose samples to use (with ``resample``).
            return_predictions: also return the predicted classes.
        """
        self.model.eval()
        y = self.dataset.y
        bs = self.cfg.eval_batch_size or self.cfg.batch_size
        loss_sum, correct = 0.0, 0.0
        preds: List[torch.Tensor] = []
        ids: List[torch.Tensor] = []
        for part, pos, _ in self.batches(nodes, bs, shuffle=False, epoch=0):
            sampled = self.sampler.sample(part, 0 if not self.cfg.resample else epoch)
            out = self.model(*self.model.batch_args(self.store, sampled, part, self.device, epoch))
            target = y[part].to(out.device)
            loss_sum += float(F.cross_entropy(out, target, reduction="sum")) if len(part) else 0.0
            pred = out.argmax(dim=1)
            correct += float((pred == target).sum())
            if return_predictions:
                preds.append(pred.cpu())
                ids.append(pos)
        n = float(nodes.shape[0])
        loss_sum, correct = _all_reduce_sum([loss_sum, correct], self.reduce_device(self.device))
        pred_all = None
        if return_predictions:
            p = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
            i = torch.cat(ids) if ids else torch.empty(0, dtype=torch.long)
            if self.world_size > 1:
                from ..models.largegt import _all_gather_varlen

                dev = self.reduce_device(self.device)
                p = _all_gather_varlen(p.to(dev)).cpu()
                i = _all_gather_varlen(i.to(dev)).cpu()
            pred_all = torch.empty(len(nodes), dtype=torch.long)
            pred_all[i] = p
        if n == 0:
            return float("nan"), float("nan"), pred_all
        return loss_sum / n, correct / n, pred_all

    def test(self, trainer: Any) -> Dict[str, float]:
        from ..metrics import macro_f1

        _, test_acc, pred = self.evaluate(self.test_idx, return_predictions=True)
        ds = self.dataset
        metrics = {"accuracy": test_acc,
                   "macro_f1": macro_f1(pred, ds.y[self.test_idx].cpu(), num_classes=int(ds.num_classes))
                   if len(self.test_idx) else float("nan")}
        if len(self.test_idx):
            from ..datasets.ogb_loader import ogb_node_metrics

            metrics.update(ogb_node_metrics(ds, F.one_hot(pred.long(), int(ds.num_classes)).float(),
                                            self.test_idx.cpu()))
        return metrics

    def record_extras(self, trainer: Any) -> Dict[str, Any]:
        return {"trainer": "minibatch", "world_size": self.world_size, "feature_store": type(self.store).__name__,
                "sampler": repr(self.sampler)}

    def close(self) -> None:
        """Close the feature store built in :meth:`setup` (a store passed in is left open)."""
        if self._own_store and self.store is not None:
            self.store.close()
            self.store = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


# --------------------------------------------------------------------------- trainer
class MiniBatchTrainer(Trainer):
    """The engine's :class:`~graphkit.training.engine.Trainer` on a :class:`MiniBatchNodeTask`
    (see the module docstring).

    Args:
        model: a model with ``feature_table``, ``make_sampler`` and ``batch_args``
            (e.g. :class:`~graphkit.models.largegt.LargeGT`); hyper-parameters set.
        dataset: a :class:`~graphkit.datasets.NodeDataset` (graph, x, y, splits).
        config: training hyper-parameters.
        store: an already built feature store holding ``model.feature_table(graph, x)``
            (e.g. a :class:`~graphkit.feature_store.MemMapStore` built out of core); by
            default one is built from ``config.feature_store``.
        callbacks: see :class:`~graphkit.training.engine.Trainer`.
    """

    def __init__(self, model: Any, dataset: Any, config: Optional[MiniBatchTrainConfig] = None,
                 store: Any = None, callbacks: Optional[List[Any]] = None) -> None:
        config = config or MiniBatchTrainConfig()
        task = MiniBatchNodeTask(dataset, store)
        if task.rank != 0 and config.progress:
            config = dataclasses.replace(config, progress=False)
        self.rank, self.world_size = task.rank, task.world_size
        super().__init__(model, task, config, callbacks)

    def _device(self) -> torch.device:
        if self.cfg.device is not None:
            return torch.device(self.cfg.device)
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if self.world_size > 1 else 0)
        return torch.device("cpu")

    @property
    def store(self) -> Any:
        """The feature store (built in :meth:`fit` unless one was passed)."""
        return self.task.store

    def evaluate(self, nodes: torch.Tensor, sampler: Any = None, epoch: int = 0,
                 return_predictions: bool = False) -> Tuple[float, float, Optional[torch.Tensor]]:
        """(mean loss, accuracy, predictions in ``nodes`` order or None) over ``nodes``, all ranks.

        Args:
            nodes: the nodes to evaluate.
            sampler: unused (the task's sampler); kept for compatibility.
            epoch: the epoch whose samples to use.
            return_predictions: also return the predicted classes.
        """
        return self.task.evaluate(nodes, epoch, return_predictions)

    def close(self) -> None:
        """Close the feature store the trainer built (a store passed in is left open)."""
        self.task.close()


# --------------------------------------------------------------------------- fit entry point
def fit_minibatch(model: Any, dataset: Any, *, data_dir: Any = None, preset: Union[bool, str] = True, seed: int = 0,
                  store: Any = None, resume: bool = False, callbacks: Optional[List[Any]] = None,
                  **hparams: Any) -> FitResult:
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
        resume: continue from ``checkpoint_dir`` (single process; see :func:`graphkit.fit`).
        callbacks: see :mod:`graphkit.training.callbacks`.
        **hparams: model hyper-parameters and :class:`MiniBatchTrainConfig` fields.
    """
    from .node import node_run

    init_distributed()
    instance, ds, cfg = node_run(model, dataset, data_dir, preset, seed, hparams, MiniBatchTrainConfig)
    trainer = MiniBatchTrainer(instance, ds, cfg, store=store, callbacks=callbacks)
    try:
        return trainer.fit(resume=resume)
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
