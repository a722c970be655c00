"""Training loop for the recommendation models (LightGCN, UltraGCN, ...).

One epoch visits every training interaction once in a seeded random order; each
positive gets ``num_negatives`` uniform negatives that exclude the user's
training items (or, for a model whose ``negative_sampling`` is ``"all_items"``,
uniform over all items).  Every ``eval_every`` epochs the model is ranked on the
validation split (never on test); the best weights by ``select_metric`` are kept
and training stops after ``patience`` evaluations without improvement.  The test
split is evaluated once, at the end, with the selected weights.
"""
from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import CheckpointError, ConfigError, TrainingError
from ..utils import environment_record, package_versions, seed_everything
from .checkpoint import (
    CHECKPOINT_FILE, checkpoint_dir_lock, compare_fields, load_checkpoint, remove_stale_temporaries,
    restore_rng_state, save_checkpoint,
)
from .result import FitResult, _jsonable, save_state_dict, write_json
from .sampling import NegativeSampler


@dataclass
class RecTrainConfig:
    """Training hyper-parameters of a recommendation run.

    Args:
        lr: Adam learning rate.
        batch_size: positives per step.
        num_negatives: negatives per positive.
        epochs: maximum number of epochs.
        eval_every: validate every this many epochs.
        patience: stop after this many validations without improvement (0 = never stop early).
        ks: cut-offs of the ranking metrics.
        select_metric: validation metric used for model selection.
        weight_decay: optimizer weight decay (models carry their own L2 terms; default 0).
        optimizer: ``"adam"`` or ``"sgd"``.
        seed: random seed (initialisation, order of interactions, negatives).
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        max_time: stop training after this many seconds of training (checked after every
            batch; an epoch cut short is validated, its history row says how many
            ``batches`` it ran, and the best model so far is kept).  A run stopped mid-epoch
            by ``max_time`` and resumed with a larger budget continues at the next epoch.
        num_threads: torch CPU threads (default: leave torch's setting).
        checkpoint_dir: when set, the best and the last weights are saved there after each
            validation (``best``/``last`` ``.safetensors`` + ``.json``), and a resumable
            checkpoint of the whole training state (``checkpoint.safetensors``: weights,
            optimizer state, epoch/batch position, best weights/score/patience counter,
            history, config, dataset fingerprint, RNG states) every ``checkpoint_every``
            epochs, when training ends, and on SIGTERM/SIGINT.  All writes are atomic.
            Resume with ``graphkit.fit(..., resume=True)`` (see ``docs/reliability.md``).
        checkpoint_every: epochs between resumable checkpoints (default: ``eval_every``);
            needs ``checkpoint_dir``.
        eval_memory_mb: memory budget of one full-ranking chunk.
        progress: show a progress bar.
        evaluate_test: evaluate the selected model on the test split at the end (``False``:
            ``FitResult.metrics`` is empty; a tuner's trials use it so that only the final
            model ever sees the test split).
    """

    lr: float = 1e-3
    batch_size: int = 2048
    num_negatives: int = 1
    epochs: int = 1000
    eval_every: int = 10
    patience: int = 5
    ks: Tuple[int, ...] = (20,)
    select_metric: str = "recall@20"
    weight_decay: float = 0.0
    optimizer: str = "adam"
    seed: int = 2020
    device: Optional[str] = None
    max_time: Optional[float] = None
    num_threads: Optional[int] = None
    checkpoint_dir: Optional[str] = None
    checkpoint_every: Optional[int] = None
    eval_memory_mb: int = 256
    progress: bool = True
    evaluate_test: bool = True

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        for name in ("lr",):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive finite number, got {v!r}")
        for name in ("batch_size", "num_negatives", "epochs", "eval_every"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v > 0):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.checkpoint_every is not None:
            v = self.checkpoint_every
            if isinstance(v, bool) or not (isinstance(v, (int, np.integer)) and v > 0):
                raise ConfigError(f"checkpoint_every must be a positive integer or None, got {v!r}")
            if not self.checkpoint_dir:
                raise ConfigError("checkpoint_every needs checkpoint_dir (the folder to write checkpoints to)")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        metric, _, k = self.select_metric.partition("@")
        if not k.isdigit() or int(k) not in self.ks:
            raise ConfigError(f"select_metric {self.select_metric!r} must name one of ks={self.ks}, e.g. 'recall@{self.ks[0]}'")


def _interactions(train: sp.csr_matrix) -> Tuple[np.ndarray, np.ndarray]:
    coo = train.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64)


def _evaluate(model: Any, ground_truth: sp.csr_matrix, exclude: sp.csr_matrix, cfg: RecTrainConfig) -> Dict[str, float]:
    from ..metrics import evaluate_embeddings

    model.eval()
    with torch.no_grad():
        ue, ie = model.embeddings()
    model.train()
    return evaluate_embeddings(ue, ie, ground_truth, exclude=exclude, ks=cfg.ks, memory_budget_mb=cfg.eval_memory_mb)


def _test_metrics(model: Any, ds: Any, cfg: Any) -> Dict[str, float]:
    """Test metrics of ``model`` with the training items masked (training + validation items
    when the dataset has a validation split); ``{}`` without a test split.  ``cfg`` needs
    ``ks`` and ``eval_memory_mb``."""
    if ds.test is None or ds.test.nnz == 0:
        return {}
    exclude = ds.full_train if ds.valid is not None and ds.valid.nnz > 0 else ds.train
    return _evaluate(model, ds.test, exclude, cfg)


#: Config fields that may change between a checkpoint and its resumption (they control
#: how long and where a run goes, not what it computes).
RESUMABLE_CHANGES = ("epochs", "max_time", "progress", "num_threads", "device", "checkpoint_dir", "checkpoint_every",
                     "evaluate_test")
_SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class _InterruptGuard:
    """Defers SIGINT/SIGTERM to the next batch boundary while a checkpointing run trains.

    The handler only records the signal; the trainer checks :attr:`pending` after every
    batch and at every epoch end, saves a checkpoint there and calls :meth:`deliver`.
    A second signal of a kind that is already pending is delivered at once (press
    Ctrl-C twice to abort without waiting).  Signals the process ignores (``SIG_IGN``)
    stay ignored.  Only the main thread can install handlers; elsewhere the guard is
    inactive.  The previous handlers are restored on exit.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.pending: Optional[int] = None
        self._saved: Dict[int, Any] = {}      # handlers in place before training
        self._installed = False

    def __enter__(self) -> "_InterruptGuard":
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                prev = signal.getsignal(sig)
                if prev is signal.SIG_IGN or prev is None:  # ignored, or set outside Python: leave alone
                    continue
                self._saved[sig] = prev
                signal.signal(sig, self._handler)
            self._installed = bool(self._saved)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._installed:
            for sig, prev in self._saved.items():
                signal.signal(sig, prev)
            self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.pending == signum:  # asked twice: stop now, without waiting for a checkpoint
            self.deliver("received twice; stopping before the next batch boundary (no new checkpoint)")
        self.pending = signum

    def deliver(self, message: str) -> None:
        """Hand the pending signal to the handler that was installed before training.

        Python's default SIGINT handler -> ``KeyboardInterrupt``; the default SIGTERM
        action -> ``SystemExit(128 + SIGTERM)`` (exit status 143, ``finally`` blocks
        run); a custom handler is called, and training goes on (unguarded) if it returns.
        """
        signum = self.pending
        if signum is None:
            return
        prev = self._saved.get(signum, signal.SIG_DFL)
        self._restore()
        self.pending = None
        text = f"graphkit: {_SIGNAL_NAMES.get(signum, signum)}: {message}"
        if prev is signal.default_int_handler or (prev is signal.SIG_DFL and signum == signal.SIGINT):
            raise KeyboardInterrupt(text)
        if prev is signal.SIG_DFL:
            print(text, file=sys.stderr, flush=True)
            raise SystemExit(128 + int(signum))
        if callable(prev):
            prev(signum, None)


class RecommendationTrainer:
    """Trains a :class:`~graphkit.models.base.RecommenderModel` on a recommendation dataset.

    Args:
        model: the model (its hyper-parameters set); ``prepare`` is called here.
        dataset: a :class:`graphkit.datasets.RecDataset` (``train``, ``valid``, ``test``,
            ``full_train`` CSR matrices, ``graph()``, ``split_record()``).
        config: training hyper-parameters.
        callbacks: objects with an ``on_epoch_end(trainer, epoch, logs)`` method, called after
            every epoch with that epoch's history row (loss, seconds and, when it was
            validated, the ``valid_*`` metrics); setting ``trainer.should_stop = True`` ends
            training after that epoch (``stopped_by = "callback"``); an exception raised by a
            callback propagates (e.g. a tuner pruning a trial).
    """

    def __init__(self, model: Any, dataset: Any, config: RecTrainConfig, callbacks: Optional[List[Any]] = None) -> None:
        config.validate()
        self.model = model
        self.dataset = dataset
        self.cfg = config
        self.callbacks = list(callbacks or [])
        #: set to True (e.g. by a callback) to stop after the current epoch
        self.should_stop = False
        dev = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(dev)

    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        return torch.optim.SGD(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def _save_checkpoint(self, name: str, epoch: int, opt: torch.optim.Optimizer, extra: Dict[str, Any]) -> None:
        if not self.cfg.checkpoint_dir:
            return
        folder = Path(self.cfg.checkpoint_dir)
        save_state_dict(folder / f"{name}.safetensors", self.model.state_dict())
        write_json(folder / f"{name}.json", {"epoch": epoch, **extra})

    # ------------------------------------------------------------------ resumable state
    def _identity(self) -> Dict[str, Any]:
        """What a checkpoint must agree on to be resumed by this trainer."""
        ds = self.dataset
        train = ds.train
        return {
            "model": type(self.model).__name__,
            "hparams": _jsonable(self.model.hparams()),
            "dataset": getattr(ds, "name", None),
            "fingerprint": getattr(ds, "fingerprint", None),
            "num_users": int(train.shape[0]),
            "num_items": int(train.shape[1]),
            "train_nnz": int(train.nnz),
            "config": _jsonable({k: v for k, v in asdict(self.cfg).items() if k not in RESUMABLE_CHANGES}),
        }

    def _checkpoint_path(self) -> Path:
        return Path(self.cfg.checkpoint_dir) / CHECKPOINT_FILE  # type: ignore[arg-type]

    def _write_resume(self, opt: torch.optim.Optimizer, state: Dict[str, Any], reason: str) -> Path:
        meta = {
            "task": "recommendation",
            "identity": self._identity(),
            "reason": reason,
            "written_at": time.time(),
            "versions": package_versions(),
            **{k: v for k, v in state.items() if k != "best_state"},
        }
        return save_checkpoint(self._checkpoint_path(), model_state=self.model.state_dict(),
                               optimizer_state=opt.state_dict(), best_state=state["best_state"], meta=meta)

    def _read_resume(self) -> Optional[Any]:
        """The checkpoint to resume from, checked against this run; ``None`` when none exists."""
        path = self._checkpoint_path()
        if not path.exists():
            warnings.warn(f"resume=True but there is no checkpoint at {path}; training from the start", stacklevel=4)
            return None
        ckpt = load_checkpoint(path)
        saved, now = ckpt.meta.get("identity"), self._identity()
        if ckpt.meta.get("task") != "recommendation":
            raise CheckpointError(f"{path}: not a recommendation training checkpoint (task {ckpt.meta.get('task')!r})")
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
            raise CheckpointError(f"{path}: malformed checkpoint (no run identity)")
        problems = compare_fields(saved, now, ["model", "hparams", "dataset", "fingerprint", "num_users",
                                               "num_items", "train_nnz"])
        cfg_saved, cfg_now = saved["config"], now["config"]
        problems += [f"config {p}" for p in compare_fields(cfg_saved, cfg_now, sorted(set(cfg_saved) | set(cfg_now)))]
        if problems:
            raise CheckpointError(
                f"cannot resume from {path}: it was written for a different run; mismatch in "
                + "; ".join(problems)
                + f" (fields that may change on resume: {', '.join(RESUMABLE_CHANGES)})")
        return ckpt

    def _restore_weights(self, ckpt: Any, opt: torch.optim.Optimizer) -> None:
        """Load model, best and optimizer state from ``ckpt``, checking every shape and
        hyper-parameter against this run (a checkpoint is data: it must not be able to
        make training fail later with a non-graphkit error)."""
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
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise CheckpointError(f"{ckpt.path}: the saved state does not fit this model/optimizer ({exc})") from None
        loaded = opt.state_dict()
        if [{k: v for k, v in g.items() if k != "params"} for g in loaded["param_groups"]] != fresh:
            raise CheckpointError(f"{ckpt.path}: the optimizer hyper-parameters differ from this run's")
        for p in (p for g in opt.param_groups for p in g["params"]):
            for key, value in opt.state.get(p, {}).items():
                ok = value is None or (isinstance(value, torch.Tensor) and value.is_floating_point() and
                                       (value.dim() == 0 or tuple(value.shape) == tuple(p.shape)))
                if not ok:
                    raise CheckpointError(f"{ckpt.path}: optimizer state {key!r} does not fit its parameter")

    # ------------------------------------------------------------------ training
    def _test_and_record(self, has_valid: bool, best_epoch: int, best_score: float, history: List[Dict[str, Any]],
                         stopped: str, train_seconds: float) -> Tuple[Dict[str, float], Dict[str, Any]]:
        """Evaluate the selected model on test (once) and build the run's record."""
        cfg, ds = self.cfg, self.dataset
        test = _test_metrics(self.model, ds, cfg) if cfg.evaluate_test else {}
        record = {
            "task": "recommendation",
            "model": type(self.model).__name__,
            "hparams": self.model.hparams(),
            "train": {k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
            "seed": cfg.seed,
            **ds.split_record(),
            "selection": f"{cfg.select_metric} on validation" if has_valid else "last epoch (no validation split)",
            "best_epoch": best_epoch,
            "best_valid": best_score if has_valid else None,
            "epochs_run": history[-1]["epoch"],
            "stopped_by": stopped,
            "train_seconds": train_seconds,
            **environment_record(self.device),
        }
        return test, record

    def _fit_fitted(self) -> FitResult:
        """A :class:`~graphkit.models.baselines.FittedRecommender`: one call to its solver on the
        training matrix, then validation and the test evaluation, with the same record."""
        import pandas as pd

        cfg, ds = self.cfg, self.dataset
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        seed_everything(cfg.seed)
        self.model.to(self.device)
        self.model.prepare(ds.train, None)
        t0 = time.perf_counter()
        self.model.fit_interactions(ds.train, seed=cfg.seed, num_threads=cfg.num_threads)
        row: Dict[str, Any] = {"epoch": 1, "loss": float("nan"), "seconds": time.perf_counter() - t0}
        has_valid = ds.valid is not None and ds.valid.nnz > 0
        score = -math.inf
        if has_valid:
            t1 = time.perf_counter()
            val = _evaluate(self.model, ds.valid, ds.train, cfg)
            row.update({f"valid_{k}": v for k, v in val.items()})
            row["eval_seconds"] = time.perf_counter() - t1
            score = val[cfg.select_metric]
        train_seconds = row["seconds"]
        test, record = self._test_and_record(has_valid, 1, score, [row], "fitted", train_seconds)
        return FitResult(self.model, test, pd.DataFrame([row]), record)

    def fit(self, resume: bool = False) -> FitResult:
        """Train, select on validation, evaluate on test; return a :class:`FitResult`.

        Args:
            resume: continue from ``<checkpoint_dir>/checkpoint.safetensors`` when it
                exists (training from the start, with a warning, when it does not).  The
                result is bit-identical to an uninterrupted run with the same seed on the
                same device and thread count.

        Raises:
            ConfigError: ``resume=True`` without ``checkpoint_dir``, or another run
                writing into the same ``checkpoint_dir``.
            CheckpointError: the checkpoint is unreadable, corrupted, or was written for
                another model, dataset (fingerprint) or configuration (the mismatching
                fields are named).
            TrainingError: a non-finite loss (epoch and batch named); checkpoints written
                before it are left untouched.
        """
        cfg = self.cfg
        if getattr(self.model, "trainer", None) == "fitted":
            if resume:
                raise ConfigError(f"{type(self.model).__name__} is fitted in one call: there is nothing to resume")
            return self._fit_fitted()
        if resume and not cfg.checkpoint_dir:
            raise ConfigError("resume=True needs checkpoint_dir (the folder the interrupted run checkpointed to)")
        if not cfg.checkpoint_dir:
            return self._fit(None, _InterruptGuard(False))
        folder = Path(cfg.checkpoint_dir)
        with checkpoint_dir_lock(folder):
            remove_stale_temporaries(folder, [CHECKPOINT_FILE, "best.safetensors", "best.json",
                                              "last.safetensors", "last.json"])
            ckpt = self._read_resume() if resume else None
            with _InterruptGuard(True) as guard:
                result = self._fit(ckpt, guard)
                guard.deliver(f"training had finished; its final checkpoint is {self._checkpoint_path()}")
                return result

    def _fit(self, ckpt: Optional[Any], guard: _InterruptGuard) -> FitResult:
        import pandas as pd
        from tqdm.auto import tqdm

        cfg, ds = self.cfg, self.dataset
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        seed_everything(cfg.seed)
        self.model.to(self.device)
        graph = ds.graph().to(self.device)
        self.model.prepare(ds.train, graph)
        sampler = NegativeSampler(ds.train, exclude_positives=self.model.negative_sampling != "all_items")
        users_all, items_all = _interactions(ds.train)
        n_inter = users_all.shape[0]
        if n_inter == 0:
            raise TrainingError("the training split has no interactions")
        has_valid = ds.valid is not None and ds.valid.nnz > 0
        opt = self._optimizer()
        steps = math.ceil(n_inter / cfg.batch_size)
        history: List[Dict[str, Any]] = []
        best_score, best_epoch, best_state, bad = -math.inf, 0, None, 0
        start_epoch, start_batch, partial_loss, partial_seconds, elapsed = 1, 0, 0.0, 0.0, 0.0
        stopped = "epochs"
        finished: Optional[str] = None
        resumes: List[Dict[str, Any]] = []
        if ckpt is not None:
            m = ckpt.meta
            self._restore_weights(ckpt, opt)
            try:
                pos = m["position"]
                start_epoch, start_batch = int(pos["epoch"]), int(pos["batch"])
                partial_loss, partial_seconds = float(m["epoch_loss_sum"]), float(m["epoch_seconds"])
                elapsed = float(m["train_seconds"])
                history = [dict(r) for r in m["history"]]
                best_score, best_epoch, bad = float(m["best_score"]), int(m["best_epoch"]), int(m["bad"])
                finished = m.get("stopped_by")
                resumes = list(m.get("resumes", []))
                if int(pos["steps"]) != steps or not 0 <= start_batch < steps or start_epoch != len(history) + 1:
                    raise ValueError(f"position epoch {start_epoch}, batch {start_batch} of {pos['steps']} does not "
                                     f"fit {steps} batches per epoch and {len(history)} finished epochs")
                if [r.get("epoch") for r in history] != list(range(1, start_epoch)) or not all(
                        isinstance(r.get("loss"), float) for r in history):
                    raise ValueError("the history does not list epochs 1..position-1 with their losses")
                if finished not in (None, "epochs", "early stopping", "max_time") or not (
                        0 <= best_epoch < start_epoch and bad >= 0 and math.isfinite(elapsed) and elapsed >= 0):
                    raise ValueError("inconsistent counters")
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise CheckpointError(f"{ckpt.path}: malformed training state ({exc})") from None
            best_state = ckpt.best_state
            resumes.append({"epoch": start_epoch, "batch": start_batch, "reason": m.get("reason")})
            try:
                restore_rng_state(ckpt.rng["tensors"], ckpt.rng["json"])
            except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                raise CheckpointError(f"{ckpt.path}: malformed RNG state ({type(exc).__name__}: {exc})") from None
        every = cfg.checkpoint_every or cfg.eval_every

        def snapshot(epoch: int, batch: int, loss_sum: float, seconds: float,
                     stopped_by: Optional[str]) -> Dict[str, Any]:
            return {
                "position": {"epoch": epoch, "batch": batch, "steps": steps},
                "epoch_loss_sum": loss_sum, "epoch_seconds": seconds,
                "train_seconds": time.perf_counter() - t_start,
                "history": history, "best_score": best_score, "best_epoch": best_epoch, "bad": bad,
                "best_state": best_state, "stopped_by": stopped_by, "resumes": resumes,
            }

        t_start = time.perf_counter() - elapsed
        if finished == "early stopping" or (
                finished == "max_time" and cfg.max_time is not None and elapsed >= cfg.max_time):
            start_epoch, stopped = cfg.epochs + 1, finished  # the resumed run had already stopped
        bar = tqdm(total=cfg.epochs, initial=min(start_epoch - 1, cfg.epochs), disable=not cfg.progress,
                   desc=type(self.model).__name__, unit="epoch")
        try:
            for epoch in range(start_epoch, cfg.epochs + 1):
                resumed_here = epoch == start_epoch and start_batch > 0
                t0 = time.perf_counter() - (partial_seconds if resumed_here else 0.0)
                order = np.random.default_rng([cfg.seed, epoch]).permutation(n_inter)
                total = partial_loss if resumed_here else 0.0
                last_batch = steps - 1
                for b in range(start_batch if resumed_here else 0, steps):
                    idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                    u_np = users_all[idx]
                    neg = sampler.sample(u_np, cfg.num_negatives, seed=(cfg.seed * 1_000_003 + epoch) * 65_537 + b)
                    u = torch.from_numpy(u_np).to(self.device)
                    p = torch.from_numpy(items_all[idx]).to(self.device)
                    n = torch.from_numpy(neg).to(self.device)
                    loss = self.model.loss(u, p, n)
                    if not torch.isfinite(loss):
                        kept = f"; the last checkpoint in {cfg.checkpoint_dir} is kept" if cfg.checkpoint_dir else ""
                        raise TrainingError(f"non-finite loss {loss.item()} at epoch {epoch}, batch {b}{kept}")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * idx.shape[0]
                    if guard.pending is not None and b + 1 < steps:
                        path = self._write_resume(opt, snapshot(epoch, b + 1, total, time.perf_counter() - t0, None),
                                                  f"signal {_SIGNAL_NAMES.get(guard.pending, guard.pending)}")
                        guard.deliver(f"checkpoint saved to {path} at epoch {epoch}, batch {b + 1}; "
                                      "continue with graphkit.fit(..., resume=True) or graphkit fit ... --resume")
                    if (cfg.max_time is not None and b + 1 < steps
                            and time.perf_counter() - t_start >= cfg.max_time):
                        last_batch = b  # out of time mid-epoch: cut the epoch here
                        break
                seen = min((last_batch + 1) * cfg.batch_size, n_inter)
                row: Dict[str, Any] = {"epoch": epoch, "loss": total / seen, "seconds": time.perf_counter() - t0,
                                       "batches": last_batch + 1}
                out_of_time = cfg.max_time is not None and time.perf_counter() - t_start >= cfg.max_time
                if has_valid and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs or out_of_time):
                    t1 = time.perf_counter()
                    val = _evaluate(self.model, ds.valid, ds.train, cfg)
                    row.update({f"valid_{k}": v for k, v in val.items()})
                    row["eval_seconds"] = time.perf_counter() - t1
                    score = val[cfg.select_metric]
                    if score > best_score:
                        best_score, best_epoch, bad = score, epoch, 0
                        best_state = copy.deepcopy(self.model.state_dict())
                        self._save_checkpoint("best", epoch, opt, {"valid": val})
                    else:
                        bad += 1
                    self._save_checkpoint("last", epoch, opt, {"valid": val})
                    bar.set_postfix(loss=f"{row['loss']:.4f}", **{cfg.select_metric: f"{score:.4f}"})
                else:
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                history.append(row)
                bar.update(1)
                for cb in self.callbacks:
                    hook = getattr(cb, "on_epoch_end", None)
                    if hook is not None:
                        hook(self, epoch, dict(row))
                if cfg.patience and bad >= cfg.patience:
                    stopped = "early stopping"
                elif out_of_time:
                    stopped = "max_time"
                elif self.should_stop:
                    stopped = "callback"
                done = stopped != "epochs" or epoch == cfg.epochs
                if cfg.checkpoint_dir and (epoch % every == 0 or done or guard.pending is not None):
                    reason = (f"signal {_SIGNAL_NAMES.get(guard.pending, guard.pending)}" if guard.pending is not None
                              else "end of training" if done else "checkpoint_every")
                    path = self._write_resume(opt, snapshot(epoch + 1, 0, 0.0, 0.0, stopped if done else None), reason)
                    if guard.pending is not None:
                        guard.deliver(f"checkpoint saved to {path} after epoch {epoch}; continue with "
                                      "graphkit.fit(..., resume=True) or graphkit fit ... --resume")
                if done:
                    break
        finally:
            bar.close()
        train_seconds = time.perf_counter() - t_start
        if best_state is not None:
            self.model.load_state_dict(best_state)
        else:
            best_epoch = history[-1]["epoch"]
        test, record = self._test_and_record(has_valid, best_epoch, best_score, history, stopped, train_seconds)
        if resumes:
            record["resumed_from"] = resumes
        return FitResult(self.model, test, pd.DataFrame(history), record)


__all__ = ["RecTrainConfig", "RecommendationTrainer", "RESUMABLE_CHANGES"]
