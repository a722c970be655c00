"""The training engine: one :class:`Trainer` owns the loop of every task.

A :class:`Trainer` runs epochs of batches and owns everything that is the same for every
task: the optimizer and LR scheduler (by name or factory), the validation cadence
(``eval_every``), model selection on a validation metric with ``patience``, ``max_time``
(checked after every batch), the non-finite-loss stop, callbacks (progress bar, loggers,
early stopping, user hooks), best/last weights and a resumable checkpoint with bit-exact
resume, SIGINT/SIGTERM handling, and the result record.

A :class:`TrainingTask` (an *adapter*) says only what differs between tasks: how to set up
the data, how many batches an epoch has, the loss of one batch, how to validate, how to
rank validations, and how to evaluate the selected model on test.  graphkit ships
:class:`~graphkit.training.recommendation.RecommendationTask` (BPR over user-item pairs),
:class:`~graphkit.training.node.NodeTask` (full-batch node classification) and
:class:`~graphkit.training.minibatch.MiniBatchNodeTask` (sampled mini-batches, any feature
store, DistributedDataParallel); a graph-level task plugs in the same way.

The loop, for ``epoch = 1..epochs``::

    on_epoch_start(trainer, epoch)
    for b in range(task.num_batches()):          # resumes at the checkpointed batch
        loss, loss_sum, count = task.train_batch(trainer, epoch, b)
        zero_grad; loss.backward(); step
        on_batch_end(trainer, b, {"loss": ..., "epoch": epoch})
        stop here if max_time is spent (the epoch is cut and still validated)
    every eval_every epochs (and at the last one): row.update(task.validate(...)); keep the best
    scheduler.step(); on_epoch_end(trainer, epoch, row); checkpoint
    stop on patience, max_time, or a callback's ``trainer.should_stop = True``
    on_fit_end(trainer, result)

Resume (``fit(resume=True)``, needs ``checkpoint_dir``) restores weights, optimizer and
scheduler state, position (epoch, batch), best weights and score, patience counter,
history and every RNG state, and checks that the checkpoint belongs to the same run
(model, hyper-parameters, dataset fingerprint, training configuration); the resumed run
then ends bit-identical to an uninterrupted one on the same device and thread count.
Callbacks keep no state across a resume (a CSV logger appends; a progress bar restarts).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..exceptions import CheckpointError, ConfigError, TrainingError
from ..utils import environment_record, is_finite_real, package_versions, seed_everything
from .checkpoint import (
    CHECKPOINT_FILE, checkpoint_dir_lock, compare_fields, load_checkpoint, remove_stale_temporaries,
    restore_rng_state, save_checkpoint,
)
from .interrupt import InterruptGuard, signal_name
from .result import FitResult, _jsonable, save_state_dict, write_json

__all__ = [
    "EngineConfig", "TrainingTask", "Trainer", "OPTIMIZERS", "SCHEDULERS", "RESUMABLE_CHANGES",
    "build_optimizer", "build_scheduler", "BudgetLR",
]

#: Optimizers accepted by name (``optimizer="adamw"``); a callable is used as a factory.
OPTIMIZERS: Dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad,
}
#: LR schedulers accepted by name (``scheduler="cosine"``), stepped once per epoch.
SCHEDULERS = ("cosine", "step", "exponential", "plateau", "budget")

#: Config fields that may change between a checkpoint and its resumption (they control
#: how long and where a run goes, not what it computes).
RESUMABLE_CHANGES = ("epochs", "max_time", "progress", "num_threads", "device", "checkpoint_dir", "checkpoint_every",
                     "evaluate_test", "eval_memory_mb", "prefetch", "refit")


#: Integers larger than this are refused as counts and sizes (they cannot index a tensor).
MAX_INT = 2 ** 31 - 1


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(int(v)) <= MAX_INT


#: A finite real number (not a bool; huge Python ints that do not fit a float are not).
_is_real = is_finite_real


@dataclass
class EngineConfig:
    """Training options every task shares (each task's config subclasses this one).

    Args:
        lr: learning rate.
        weight_decay: optimizer weight decay.
        epochs: maximum number of epochs.
        patience: stop after this many validations without a better one (0 = never).
        eval_every: validate every this many epochs (and after the last one).
        seed: random seed of the run.
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        max_time: stop training after this many seconds (checked after every batch; an
            epoch cut short is validated and the best model so far is kept).
        num_threads: torch CPU threads (default: leave torch's setting).
        progress: show a batch-level progress bar (:class:`~graphkit.training.callbacks.ProgressBar`).
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"``, ``"adagrad"``, or a
            factory called as ``factory(param_groups, lr=lr, weight_decay=weight_decay)``
            (e.g. ``functools.partial(torch.optim.AdamW, betas=(0.9, 0.99))``).
        scheduler: ``None``, ``"cosine"`` (``T_max=epochs``), ``"step"`` (``step_size=30``,
            ``gamma=0.1``), ``"exponential"`` (``gamma=0.99``), ``"plateau"`` (on the
            validation selection score), ``"budget"`` (linear decay to zero over the run's
            budget: the seconds of ``max_time`` when it is set, else ``epochs``; see
            :class:`BudgetLR`), or a factory ``factory(optimizer) -> scheduler``; stepped once
            per epoch.
        scheduler_options: keyword arguments that override the named scheduler's defaults.
        checkpoint_dir: when set, the best and last weights are saved there after each
            validation (``best``/``last`` ``.safetensors`` + ``.json``), and a resumable
            checkpoint (``checkpoint.safetensors``) every ``checkpoint_every`` epochs, when
            training ends, and on SIGTERM/SIGINT.  All writes are atomic.
        checkpoint_every: epochs between resumable checkpoints (default: ``eval_every``).
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 100
    patience: int = 10
    eval_every: int = 1
    seed: int = 0
    device: Optional[str] = None
    max_time: Optional[float] = None
    num_threads: Optional[int] = None
    progress: bool = True
    optimizer: Any = "adam"
    scheduler: Any = None
    scheduler_options: Optional[Dict[str, Any]] = None
    checkpoint_dir: Optional[str] = None
    checkpoint_every: Optional[int] = None

    def validate_common(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values of the shared fields (and turn a
        NumPy integer ``seed`` into a Python ``int``)."""
        if not (_is_int(self.seed) and 0 <= self.seed < 2 ** 32):
            raise ConfigError(f"seed must be an integer in [0, 2**32), got {self.seed!r} ({type(self.seed).__name__})")
        self.seed = int(self.seed)
        check_device(self.device)
        if self.num_threads is not None and not (_is_int(self.num_threads) and 0 < self.num_threads <= 4096):
            raise ConfigError(f"num_threads must be a positive integer (at most 4096) or None, got {self.num_threads!r}")
        if not (_is_real(self.lr) and 0 < self.lr <= 1e6):
            raise ConfigError(f"lr must be a positive finite number (at most 1e6), got {self.lr!r}")
        if not (_is_real(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        for name in ("epochs", "eval_every"):
            v = getattr(self, name)
            if not (_is_int(v) and v > 0):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not (_is_int(self.patience) and self.patience >= 0):
            raise ConfigError(f"patience must be an integer >= 0, got {self.patience!r}")
        if self.max_time is not None and not (_is_real(self.max_time) and 0 <= self.max_time <= 1e9):
            raise ConfigError(f"max_time must be a finite number of seconds >= 0, got {self.max_time!r}")
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, (str, os.PathLike)) or isinstance(self.checkpoint_dir, bytes):
                raise ConfigError(f"checkpoint_dir must be a folder path (str), got {self.checkpoint_dir!r}")
            self.checkpoint_dir = os.fspath(self.checkpoint_dir)
            if not self.checkpoint_dir or "\x00" in self.checkpoint_dir:
                raise ConfigError(f"checkpoint_dir must be a non-empty path without NUL bytes, got {self.checkpoint_dir!r}")
        if self.checkpoint_every is not None:
            if not (_is_int(self.checkpoint_every) and self.checkpoint_every > 0):
                raise ConfigError(f"checkpoint_every must be a positive integer or None, got {self.checkpoint_every!r}")
            if not self.checkpoint_dir:
                raise ConfigError("checkpoint_every needs checkpoint_dir (the folder to write checkpoints to)")
        if not callable(self.optimizer) and not (isinstance(self.optimizer, str) and self.optimizer in OPTIMIZERS):
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)} or a factory "
                              f"factory(params, lr=..., weight_decay=...), got {self.optimizer!r}")
        if self.scheduler is not None and not callable(self.scheduler) and not (
                isinstance(self.scheduler, str) and self.scheduler in SCHEDULERS):
            raise ConfigError(f"scheduler must be None, one of {', '.join(SCHEDULERS)} or a factory "
                              f"factory(optimizer), got {self.scheduler!r}")
        if self.scheduler_options is not None and not isinstance(self.scheduler_options, dict):
            raise ConfigError(f"scheduler_options must be a dict, got {type(self.scheduler_options).__name__}")

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        self.validate_common()


def check_device(device: Any) -> None:
    """Raise :class:`ConfigError` unless ``device`` is ``None`` or a device this torch can use.

    Args:
        device: ``None``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``, ...
    """
    if device is None:
        return
    if not isinstance(device, (str, torch.device)):
        raise ConfigError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device {device!r} is not a device name ({str(exc).splitlines()[0][:120]})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: this torch build ({torch.__version__}) has no usable CUDA "
                              "(torch.cuda.is_available() is False); use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif dev.type != "cpu":
        raise ConfigError(f"device {device!r} is not supported: graphkit trains on 'cpu' or 'cuda[:N]'")


def _describe(value: Any) -> Any:
    """A stable JSON form of a config value (a factory becomes ``module.qualname``)."""
    if callable(value) and not isinstance(value, (str, type(None))):
        func = getattr(value, "func", value)  # functools.partial
        name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', type(func).__name__)}"
        if func is not value:
            name += f"(*{_jsonable(list(getattr(value, 'args', ())))}, **{_jsonable(getattr(value, 'keywords', {}))})"
        return name
    return _jsonable(value)


def config_record(cfg: Any, drop: Sequence[str] = ("progress",)) -> Dict[str, Any]:
    """The config as a JSON-safe dict (factories named, ``drop`` fields left out)."""
    return {f.name: _describe(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.name not in drop}


def build_optimizer(spec: Any, params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The optimizer named by ``spec`` (see :data:`OPTIMIZERS`) or built by the factory ``spec``.

    Args:
        spec: a name or a factory ``factory(params, lr=..., weight_decay=...)``.
        params: parameters or parameter groups.
        lr: learning rate.
        weight_decay: weight decay (parameter groups may carry their own).
    """
    factory = OPTIMIZERS[spec] if isinstance(spec, str) else spec
    opt = factory(params, lr=lr, weight_decay=weight_decay)
    if not isinstance(opt, torch.optim.Optimizer):
        raise ConfigError(f"the optimizer factory returned {type(opt).__name__}, not a torch.optim.Optimizer")
    return opt


class BudgetLR:
    """Linear learning-rate decay over the run's budget, in wall-clock seconds or epochs.

    Li, Yumer & Ramanan, "Budgeted Training: Rethinking Deep Neural Network Training Under
    Resource Constraints", ICLR 2020 (https://arxiv.org/abs/1905.04753): when a run has a
    fixed budget, decaying the rate linearly to zero *at the end of that budget* beats a
    constant rate and schedules sized for an epoch count the run never reaches.  After each
    :meth:`step` every group's rate is ``base_lr · (1 − (1 − final) · min(1, used / budget))``,
    with ``used`` the training seconds so far (``clock()``) when ``max_time`` is given, else
    the number of steps (epochs) taken.  The state (steps taken, base rates) is saved with a
    resumable checkpoint; the seconds come from the trainer's clock, which a resume restores.
    With ``max_time`` the rates depend on the clock, so two runs with the same seed are not
    bit-identical (their epochs end at different seconds); over ``epochs`` they are.

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        epochs: the epoch budget (used when ``max_time`` is ``None``).
        max_time: the time budget in seconds, or ``None``.
        clock: returns the training seconds so far (needed with ``max_time``).
        final: the fraction of the base rate reached at the end of the budget (default 0).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, epochs: int, max_time: Optional[float] = None,
                 clock: Optional[Callable[[], float]] = None, final: float = 0.0) -> None:
        if not (_is_real(final) and 0 <= final <= 1):
            raise ConfigError(f"scheduler 'budget': final must be a number in [0, 1], got {final!r}")
        if max_time is not None and clock is None:
            raise ConfigError("scheduler 'budget' with max_time needs a clock")
        self.optimizer = optimizer
        self.epochs, self.max_time, self.clock, self.final = int(epochs), max_time, clock, float(final)
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.last_epoch = 0

    def fraction(self) -> float:
        """The fraction of the budget used so far, in ``[0, 1]``."""
        if self.max_time is not None and self.clock is not None:
            return min(1.0, self.clock() / self.max_time) if self.max_time > 0 else 1.0
        return min(1.0, self.last_epoch / max(self.epochs, 1))

    def step(self) -> None:
        """Count one epoch and set every group's rate for the budget used so far."""
        self.last_epoch += 1
        scale = 1.0 - (1.0 - self.final) * self.fraction()
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * scale

    def get_last_lr(self) -> List[float]:
        """The groups' current rates."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> Dict[str, Any]:
        """The state a resumable checkpoint keeps (steps taken and base rates)."""
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs), "final": self.final}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output.

        Args:
            state: a dict from :meth:`state_dict`.
        """
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        self.final = float(state.get("final", self.final))


def build_scheduler(spec: Any, opt: torch.optim.Optimizer, epochs: int, options: Optional[Dict[str, Any]],
                    max_time: Optional[float] = None, clock: Optional[Callable[[], float]] = None) -> Any:
    """The LR scheduler named by ``spec`` (see :data:`SCHEDULERS`), built by the factory
    ``spec``, or ``None``.

    Args:
        spec: ``None``, a name or a factory ``factory(optimizer)``.
        opt: the optimizer.
        epochs: the run's epoch budget (``T_max`` of ``"cosine"``).
        options: keyword arguments overriding the named scheduler's defaults.
        max_time: the run's time budget in seconds (``"budget"`` decays over it when set).
        clock: the trainer's training-seconds clock (for ``"budget"`` with ``max_time``).
    """
    if spec is None:
        return None
    S = torch.optim.lr_scheduler
    if callable(spec):
        return spec(opt)
    if spec == "budget":
        unknown = set(options or {}) - {"final"}
        if unknown:
            raise ConfigError(f"scheduler_options do not fit scheduler 'budget': unknown {', '.join(sorted(unknown))} "
                              "(it takes only 'final')")
        return BudgetLR(opt, epochs, max_time=max_time, clock=clock, **(options or {}))
    defaults = {"cosine": (S.CosineAnnealingLR, {"T_max": epochs}),
                "step": (S.StepLR, {"step_size": 30, "gamma": 0.1}),
                "exponential": (S.ExponentialLR, {"gamma": 0.99}),
                "plateau": (S.ReduceLROnPlateau, {"mode": "max", "factor": 0.5, "patience": 5})}
    cls, kw = defaults[spec]
    try:
        return cls(opt, **{**kw, **(options or {})})
    except TypeError as exc:
        raise ConfigError(f"scheduler_options do not fit scheduler {spec!r} ({cls.__name__}): {exc}") from None


class TrainingTask:
    """What differs between tasks; the :class:`Trainer` does the rest.

    Subclasses set :attr:`name` (the record's ``task``), :attr:`loss_column` and
    :attr:`history_columns`, and implement the methods below.  Attributes a task may read
    from the trainer: ``model``, ``cfg``, ``device``.
    """

    #: the record's ``task`` entry
    name = "task"
    #: history column of the epoch's mean training loss
    loss_column = "loss"
    #: columns of the history DataFrame, in order (``None``: every key of the rows)
    history_columns: Optional[List[str]] = None
    #: whether ``max_time`` may cut an epoch after any batch (``False``: only at epoch ends)
    cut_epochs_on_time = True

    def __init__(self, dataset: Any) -> None:
        """
        Args:
            dataset: the task's data (its split, fingerprint and ``split_record()``).
        """
        self.dataset = dataset

    # ---- set-up
    def check(self, model: Any, cfg: Any) -> None:
        """Raise :class:`ConfigError` when ``model`` cannot be trained on this task's data.

        Args:
            model: the model.
            cfg: the training config.
        """

    def setup(self, trainer: "Trainer") -> None:
        """Move model and data to ``trainer.device``; build samplers (called once per fit,
        after seeding, before the optimizer is built).

        Args:
            trainer: the trainer (``model``, ``cfg``, ``device``).
        """
        trainer.model.to(trainer.device)

    def param_groups(self, model: Any, weight_decay: float) -> Any:
        """What the optimizer optimizes (default: every parameter that requires grad).

        Args:
            model: the model.
            weight_decay: the configured weight decay (for per-group settings).
        """
        return [p for p in model.parameters() if p.requires_grad]

    def teardown(self) -> None:
        """Release what :meth:`setup` built (called once per fit, also after an error)."""

    # ---- training
    def num_batches(self) -> int:
        """Batches per epoch (the same for every epoch)."""
        raise NotImplementedError

    def train_batch(self, trainer: "Trainer", epoch: int, batch: int) -> Tuple[torch.Tensor, float, float]:
        """``(loss to back-propagate, loss sum for the log, examples)`` of one batch; the
        epoch's logged loss is ``sum(loss sums) / sum(examples)``.

        Args:
            trainer: the running trainer (``model``, ``cfg``, ``device``).
            epoch: the epoch (1-based).
            batch: the batch within the epoch (0-based).
        """
        raise NotImplementedError

    def reduce_epoch(self, loss_sum: float, count: float) -> Tuple[float, float]:
        """Combine an epoch's loss sum and count over processes (distributed tasks).

        Args:
            loss_sum: this process's sum of the batches' loss sums.
            count: this process's number of examples.
        """
        return loss_sum, count

    def time_is_up(self, elapsed: float, max_time: float) -> bool:
        """Whether ``max_time`` is spent (distributed tasks agree over ranks).

        Args:
            elapsed: training seconds so far.
            max_time: the budget.
        """
        return elapsed >= max_time

    def row_extras(self) -> Dict[str, Any]:
        """Task-specific entries of the epoch's history row (e.g. sampling seconds)."""
        return {}

    # ---- validation, selection, test
    def has_validation(self) -> bool:
        """Whether the data has a validation split."""
        raise NotImplementedError

    def validate(self, trainer: "Trainer", epoch: int) -> Dict[str, float]:
        """The validation entries of the history row (e.g. ``valid_recall@20`` or
        ``val_loss``/``val_acc``).

        Args:
            trainer: the running trainer.
            epoch: the epoch just trained.
        """
        raise NotImplementedError

    def selection_key(self, val: Dict[str, float]) -> Tuple[float, ...]:
        """A tuple that is larger for a better validation (compared lexicographically).

        Args:
            val: what :meth:`validate` returned.
        """
        raise NotImplementedError

    def selection_text(self) -> str:
        """How the model is selected, for the record."""
        raise NotImplementedError

    def selection_record(self, best: Optional[Dict[str, float]]) -> Dict[str, Any]:
        """The record entries describing the best validation.

        Args:
            best: the best :meth:`validate` output (``None`` without validation).
        """
        return {}

    def test(self, trainer: "Trainer") -> Dict[str, float]:
        """Test metrics of the (selected) model; evaluated once, at the end.

        Args:
            trainer: the trainer (its model holds the selected weights).
        """
        raise NotImplementedError

    # ---- identity, record
    def identity(self, model: Any) -> Dict[str, Any]:
        """What a checkpoint must agree on (besides the config) to be resumed.

        Args:
            model: the model being trained.
        """
        ds = self.dataset
        return {"model": type(model).__name__, "hparams": _jsonable(_hparams(model)),
                "dataset": getattr(ds, "name", None), "fingerprint": getattr(ds, "fingerprint", None)}

    def split_record(self) -> Dict[str, Any]:
        """The split part of the record (dataset, fingerprint, split seed, ...)."""
        ds = self.dataset
        return ds.split_record() if hasattr(ds, "split_record") else {"dataset": getattr(ds, "name", None)}

    def record_extras(self, trainer: "Trainer") -> Dict[str, Any]:
        """Task-specific record entries.

        Args:
            trainer: the trainer.
        """
        return {}

    def format_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        """The history row as the task reports it (default: unchanged).

        Args:
            row: the engine's row (epoch, loss, seconds, batches, validation, eval_seconds).
        """
        return row


def _hparams(model: Any) -> Dict[str, Any]:
    return model.hparams() if hasattr(model, "hparams") else {}


class Trainer:
    """Trains ``model`` on a :class:`TrainingTask` and returns a :class:`FitResult`.

    Example (what :func:`graphkit.fit` does for a recommendation model)::

        task = RecommendationTask(dataset)
        result = Trainer(model, task, RecTrainConfig(epochs=50), callbacks=[CSVLogger("log.csv")]).fit()

    Args:
        model: the model, hyper-parameters set.
        task: the task adapter holding the dataset.
        config: an :class:`EngineConfig` (or a task's subclass of it).
        callbacks: objects with any of ``on_fit_start(trainer)``,
            ``on_epoch_start(trainer, epoch)``, ``on_batch_end(trainer, batch, logs)``,
            ``on_epoch_end(trainer, epoch, logs)`` and ``on_fit_end(trainer, result)``
            (see :mod:`graphkit.training.callbacks`).  Setting ``trainer.should_stop =
            True`` ends training after the current epoch (``stopped_by = "callback"``);
            an exception raised by a callback propagates (e.g. a tuner pruning a trial).
            A progress bar and the ``graphkit`` logger are added unless present.

    Attributes (while fitting): ``epoch``, ``history`` (rows so far), ``optimizer``,
    ``scheduler``, ``best_epoch``, ``should_stop``, ``elapsed()`` (training seconds).
    """

    def __init__(self, model: Any, task: TrainingTask, config: EngineConfig,
                 callbacks: Optional[Iterable[Any]] = None) -> None:
        config.validate()
        self.model = model
        self.task = task
        self.cfg = config
        task.check(model, config)
        self.device = self._device()
        if callbacks is not None and (isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__")):
            raise ConfigError(f"callbacks must be a list of callback objects, got {callbacks!r}")
        self.callbacks = self._with_defaults(list(callbacks or []))
        #: set to True (e.g. by a callback) to stop after the current epoch
        self.should_stop = False
        self.epoch = 0
        self.history: List[Dict[str, Any]] = []
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.scheduler: Any = None
        self.best_epoch = 0
        self._t_start = time.perf_counter()

    @property
    def dataset(self) -> Any:
        """The task's dataset."""
        return self.task.dataset

    def _device(self) -> torch.device:
        return torch.device(self.cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def _with_defaults(self, callbacks: List[Any]) -> List[Any]:
        from .callbacks import LoggingCallback, ProgressBar

        if self.cfg.progress and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.insert(0, ProgressBar())
        if not any(isinstance(c, LoggingCallback) for c in callbacks):
            callbacks.append(LoggingCallback())
        return callbacks

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def elapsed(self) -> float:
        """Training seconds so far (including those before a resume)."""
        return time.perf_counter() - self._t_start

    # ------------------------------------------------------------------ checkpoints
    def _identity(self) -> Dict[str, Any]:
        return {**self.task.identity(self.model),
                "config": config_record(self.cfg, drop=RESUMABLE_CHANGES)}

    def _checkpoint_path(self) -> Path:
        return Path(self.cfg.checkpoint_dir) / CHECKPOINT_FILE  # type: ignore[arg-type]

    def _save_weights(self, name: str, epoch: int, extra: Dict[str, Any]) -> None:
        if not self.cfg.checkpoint_dir:
            return
        folder = Path(self.cfg.checkpoint_dir)
        save_state_dict(folder / f"{name}.safetensors", self.model.state_dict())
        write_json(folder / f"{name}.json", {"epoch": epoch, **extra})

    def _write_resume(self, state: Dict[str, Any], reason: str) -> Path:
        meta = {
            "task": self.task.name,
            "identity": self._identity(),
            "reason": reason,
            "written_at": time.time(),
            "versions": package_versions(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            **{k: v for k, v in state.items() if k != "best_state"},
        }
        return save_checkpoint(self._checkpoint_path(), model_state=self.model.state_dict(),
                               optimizer_state=self.optimizer.state_dict(),  # type: ignore[union-attr]
                               best_state=state["best_state"], meta=meta)

    def _read_resume(self) -> Optional[Any]:
        path = self._checkpoint_path()
        if not path.exists():
            warnings.warn(f"resume=True but there is no checkpoint at {path}; training from the start", stacklevel=4)
            return None
        ckpt = load_checkpoint(path)
        saved, now = ckpt.meta.get("identity"), self._identity()
        if ckpt.meta.get("task") != self.task.name:
            raise CheckpointError(f"{path}: not a {self.task.name} training checkpoint "
                                  f"(task {ckpt.meta.get('task')!r})")
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
            raise CheckpointError(f"{path}: malformed checkpoint (no run identity)")
        keys = sorted((set(saved) | set(now)) - {"config"})
        problems = compare_fields(saved, now, keys)
        cfg_saved, cfg_now = saved["config"], now["config"]
        problems += [f"config {p}" for p in compare_fields(cfg_saved, cfg_now, sorted(set(cfg_saved) | set(cfg_now)))]
        if problems:
            raise CheckpointError(
                f"cannot resume from {path}: it was written for a different run; mismatch in "
                + "; ".join(problems)
                + f" (fields that may change on resume: {', '.join(RESUMABLE_CHANGES)})")
        return ckpt

    def _restore_weights(self, ckpt: Any) -> None:
        """Load model, best, optimizer and scheduler state from ``ckpt``, checking every
        shape and hyper-parameter against this run (a checkpoint is data: it must not be
        able to make training fail later with a non-graphkit error)."""
        opt = self.optimizer
        own = self.model.state_dict()
        for what, state in (("model", ckpt.model_state), ("best", ckpt.best_state)):
            if state is None:
                continue
            if set(state) != set(own) or any(tuple(state[k].shape) != tuple(own[k].shape) or
                                             state[k].dtype != own[k].dtype for k in own):
                raise CheckpointError(f"{ckpt.path}: the {what} weights do not fit {type(self.model).__name__} "
                                      f"(keys, shapes or dtypes differ)")
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in opt.state_dict()["param_groups"]]
        try:
            self.model.load_state_dict(ckpt.model_state)
            if ckpt.optimizer_state is not None:
                opt.load_state_dict(ckpt.optimizer_state)
            if self.scheduler is not None and ckpt.meta.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt.meta["scheduler"])
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise CheckpointError(f"{ckpt.path}: the saved state does not fit this model/optimizer ({exc})") from None
        loaded = opt.state_dict()
        if self.scheduler is None and [{k: v for k, v in g.items() if k != "params"}
                                       for g in loaded["param_groups"]] != fresh:
            raise CheckpointError(f"{ckpt.path}: the optimizer hyper-parameters differ from this run's")
        for p in (p for g in opt.param_groups for p in g["params"]):
            for key, value in opt.state.get(p, {}).items():
                ok = value is None or (isinstance(value, torch.Tensor) and value.is_floating_point() and
                                       (value.dim() == 0 or tuple(value.shape) == tuple(p.shape)))
                if not ok:
                    raise CheckpointError(f"{ckpt.path}: optimizer state {key!r} does not fit its parameter")

    # ------------------------------------------------------------------ entry point
    def fit(self, resume: bool = False) -> FitResult:
        """Train, select on validation, evaluate on test once; return a :class:`FitResult`.

        Args:
            resume: continue from ``<checkpoint_dir>/checkpoint.safetensors`` when it
                exists (training from the start, with a warning, when it does not).  The
                result is bit-identical to an uninterrupted run with the same seed on the
                same device and thread count.

        Raises:
            ConfigError: ``resume=True`` without ``checkpoint_dir``, or another run
                writing into the same ``checkpoint_dir``.
            CheckpointError: the checkpoint is unreadable, corrupted, or was written for
                another model, dataset (fingerprint) or configuration (fields named).
            TrainingError: a non-finite loss (epoch and batch named); checkpoints written
                before it are left untouched.
        """
        cfg = self.cfg
        if resume and not cfg.checkpoint_dir:
            raise ConfigError("resume=True needs checkpoint_dir (the folder the interrupted run checkpointed to)")
        try:
            if not cfg.checkpoint_dir:
                return self._fit(None, InterruptGuard(False))
            folder = Path(cfg.checkpoint_dir)
            with checkpoint_dir_lock(folder):
                remove_stale_temporaries(folder, [CHECKPOINT_FILE, "best.safetensors", "best.json",
                                                  "last.safetensors", "last.json"])
                ckpt = self._read_resume() if resume else None
                with InterruptGuard(True) as guard:
                    result = self._fit(ckpt, guard)
                    guard.deliver(f"training had finished; its final checkpoint is {self._checkpoint_path()}")
                    return result
        finally:
            self.task.teardown()

    def _prepare(self) -> None:
        cfg = self.cfg
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        seed_everything(cfg.seed)
        self.task.setup(self)
        self.optimizer = build_optimizer(cfg.optimizer, self.task.param_groups(self.model, cfg.weight_decay),
                                         cfg.lr, cfg.weight_decay)
        self.scheduler = build_scheduler(cfg.scheduler, self.optimizer, cfg.epochs, cfg.scheduler_options,
                                         max_time=cfg.max_time, clock=self.elapsed)

    def _fit(self, ckpt: Optional[Any], guard: InterruptGuard) -> FitResult:
        import pandas as pd

        cfg, task = self.cfg, self.task
        self._prepare()
        steps = task.num_batches()
        has_valid = task.has_validation()
        history: List[Dict[str, Any]] = []
        best_key: Optional[Tuple[float, ...]] = None
        best_val: Optional[Dict[str, float]] = None
        best_epoch, best_state, bad = 0, None, 0
        start_epoch, start_batch, partial_loss, partial_count, partial_seconds, elapsed = 1, 0, 0.0, 0.0, 0.0, 0.0
        stopped = "epochs"
        finished: Optional[str] = None
        resumes: List[Dict[str, Any]] = []
        if ckpt is not None:
            m = ckpt.meta
            self._restore_weights(ckpt)
            try:
                pos = m["position"]
                start_epoch, start_batch = int(pos["epoch"]), int(pos["batch"])
                partial_loss, partial_count = float(m["epoch_loss_sum"]), float(m.get("epoch_count", 0.0))
                partial_seconds, elapsed = float(m["epoch_seconds"]), float(m["train_seconds"])
                history = [dict(r) for r in m["history"]]
                best_epoch, bad = int(m["best_epoch"]), int(m["bad"])
                best_key = tuple(float(v) for v in m["best_key"]) if m.get("best_key") is not None else None
                best_val = dict(m["best_val"]) if m.get("best_val") is not None else None
                finished = m.get("stopped_by")
                resumes = list(m.get("resumes", []))
                if int(pos["steps"]) != steps or not 0 <= start_batch < steps or start_epoch != len(history) + 1:
                    raise ValueError(f"position epoch {start_epoch}, batch {start_batch} of {pos['steps']} does not "
                                     f"fit {steps} batches per epoch and {len(history)} finished epochs")
                if [r.get("epoch") for r in history] != list(range(1, start_epoch)) or not all(
                        isinstance(r.get(task.loss_column), float) for r in history):
                    raise ValueError("the history does not list epochs 1..position-1 with their losses")
                if finished not in (None, "epochs", "early stopping", "max_time", "callback") or not (
                        0 <= best_epoch < start_epoch and bad >= 0 and math.isfinite(elapsed) and elapsed >= 0):
                    raise ValueError("inconsistent counters")
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise CheckpointError(f"{ckpt.path}: malformed training state ({exc})") from None
            best_state = ckpt.best_state
            resumes.append({"epoch": start_epoch, "batch": start_batch, "reason": m.get("reason")})
            restore_rng_state(ckpt.rng["tensors"], ckpt.rng["json"])
        every = cfg.checkpoint_every or cfg.eval_every
        self.history = history
        self.best_epoch = best_epoch

        def snapshot(epoch: int, batch: int, loss_sum: float, count: float, seconds: float,
                     stopped_by: Optional[str]) -> Dict[str, Any]:
            return {
                "position": {"epoch": epoch, "batch": batch, "steps": steps},
                "epoch_loss_sum": loss_sum, "epoch_count": count, "epoch_seconds": seconds,
                "train_seconds": self.elapsed(),
                "history": history, "best_key": list(best_key) if best_key is not None else None,
                "best_val": best_val, "best_epoch": best_epoch, "bad": bad,
                "best_state": best_state, "stopped_by": stopped_by, "resumes": resumes,
            }

        self._t_start = time.perf_counter() - elapsed
        if finished in ("early stopping", "callback") or (
                finished == "max_time" and cfg.max_time is not None and elapsed >= cfg.max_time):
            start_epoch, stopped = cfg.epochs + 1, finished  # the resumed run had already stopped
        self.start_epoch, self.start_batch, self.steps = start_epoch, start_batch, steps
        self._call("on_fit_start")
        for epoch in range(start_epoch, cfg.epochs + 1):
            self.epoch = epoch
            resumed_here = epoch == start_epoch and start_batch > 0
            t0 = time.perf_counter() - (partial_seconds if resumed_here else 0.0)
            total = partial_loss if resumed_here else 0.0
            count = partial_count if resumed_here else 0.0
            self._call("on_epoch_start", epoch)
            last_batch = steps - 1
            for b in range(start_batch if resumed_here else 0, steps):
                loss, loss_sum, n = task.train_batch(self, epoch, b)
                if not torch.isfinite(loss):
                    kept = f"; the last checkpoint in {cfg.checkpoint_dir} is kept" if cfg.checkpoint_dir else ""
                    raise TrainingError(f"non-finite loss {loss.item()} at epoch {epoch}, batch {b}{kept}")
                self.optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
                loss.backward()
                self.optimizer.step()  # type: ignore[union-attr]
                total += loss_sum
                count += n
                self._call("on_batch_end", b, {"epoch": epoch, "loss": loss_sum / n if n else float("nan")})
                if guard.pending is not None and b + 1 < steps:
                    path = self._write_resume(snapshot(epoch, b + 1, total, count, time.perf_counter() - t0, None),
                                              f"signal {signal_name(guard.pending)}")
                    guard.deliver(f"checkpoint saved to {path} at epoch {epoch}, batch {b + 1}; "
                                  "continue with graphkit.fit(..., resume=True) or graphkit fit ... --resume")
                if (task.cut_epochs_on_time and cfg.max_time is not None and b + 1 < steps
                        and self.elapsed() >= cfg.max_time):
                    last_batch = b  # out of time mid-epoch: cut the epoch here
                    break
            total, count = task.reduce_epoch(total, count)
            row: Dict[str, Any] = {"epoch": epoch, task.loss_column: total / count if count else float("nan"),
                                   "seconds": time.perf_counter() - t0, "batches": last_batch + 1}
            row.update(task.row_extras())
            out_of_time = cfg.max_time is not None and task.time_is_up(self.elapsed(), cfg.max_time)
            if has_valid and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs or out_of_time):
                t1 = time.perf_counter()
                val = task.validate(self, epoch)
                row.update(val)
                row["eval_seconds"] = time.perf_counter() - t1
                key = task.selection_key(val)
                if best_key is None or key > best_key:
                    best_key, best_val, best_epoch, bad = key, dict(val), epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                    self._save_weights("best", epoch, {"valid": val})
                else:
                    bad += 1
                self._save_weights("last", epoch, {"valid": val})
                if self.scheduler is not None and _is_plateau(self.scheduler):
                    self.scheduler.step(key[0])
            if self.scheduler is not None and not _is_plateau(self.scheduler):
                self.scheduler.step()
            row = task.format_row(row)
            history.append(row)
            self.best_epoch = best_epoch
            self._call("on_epoch_end", epoch, dict(row))
            if has_valid and cfg.patience and bad >= cfg.patience:
                stopped = "early stopping"
            elif out_of_time:
                stopped = "max_time"
            elif self.should_stop:
                stopped = "callback"
            done = stopped != "epochs" or epoch == cfg.epochs
            if cfg.checkpoint_dir and (epoch % every == 0 or done or guard.pending is not None):
                reason = (f"signal {signal_name(guard.pending)}" if guard.pending is not None
                          else "end of training" if done else "checkpoint_every")
                path = self._write_resume(snapshot(epoch + 1, 0, 0.0, 0.0, 0.0, stopped if done else None), reason)
                if guard.pending is not None:
                    guard.deliver(f"checkpoint saved to {path} after epoch {epoch}; continue with "
                                  "graphkit.fit(..., resume=True) or graphkit fit ... --resume")
            if done:
                break
        train_seconds = self.elapsed()
        if best_state is not None:
            self.model.load_state_dict(best_state)
        elif history:
            best_epoch = history[-1]["epoch"]
        test = task.test(self)
        record = self._record(has_valid, best_epoch, best_val, history, stopped, train_seconds)
        if resumes:
            record["resumed_from"] = resumes
        frame = pd.DataFrame(history, columns=task.history_columns) if task.history_columns else pd.DataFrame(history)
        result = FitResult(self.model, test, frame, record)
        _attach_dataset(result, self.dataset)
        self._call("on_fit_end", result)
        return result

    def _record(self, has_valid: bool, best_epoch: int, best_val: Optional[Dict[str, float]],
                history: List[Dict[str, Any]], stopped: str, train_seconds: float) -> Dict[str, Any]:
        return {
            "task": self.task.name,
            "model": type(self.model).__name__,
            "hparams": _hparams(self.model),
            "train": config_record(self.cfg),
            "seed": self.cfg.seed,
            **self.task.split_record(),
            "selection": self.task.selection_text() if has_valid else "last epoch (no validation split)",
            "best_epoch": best_epoch,
            **self.task.selection_record(best_val if has_valid else None),
            "epochs_run": history[-1]["epoch"] if history else 0,
            "stopped_by": stopped,
            "train_seconds": train_seconds,
            **self.task.record_extras(self),
            **environment_record(self.device),
        }


def _is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _attach_dataset(result: FitResult, dataset: Any) -> None:
    """Keep the training data beside the result (``result.dataset``; never saved)."""
    try:
        result.dataset = dataset  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - a FitResult without the field
        pass
