"""Callbacks for :func:`graphkit.fit` (``callbacks=[...]``), Keras/Lightning style.

A callback is any object with some of these methods (all optional; :class:`Callback` is a
convenient base with empty ones):

``on_fit_start(trainer)``
    before the first epoch (after set-up, and after a resume restored its state).
``on_epoch_start(trainer, epoch)``
    before the epoch's first batch (``epoch`` is 1-based).
``on_batch_end(trainer, batch, logs)``
    after every optimizer step; ``logs = {"epoch": ..., "loss": <the batch's mean loss>}``.
``on_epoch_end(trainer, epoch, logs)``
    after the epoch (and its validation); ``logs`` is the epoch's history row: the mean
    training loss (``loss`` or ``train_loss``), ``seconds``, and when the epoch was
    validated the validation metrics (``valid_recall@20``, ... or ``val_loss``/``val_acc``).
``on_fit_end(trainer, result)``
    after the test evaluation, with the :class:`~graphkit.training.FitResult`.

Setting ``trainer.should_stop = True`` ends training after the current epoch
(``record["stopped_by"] == "callback"``).  The trainer exposes ``model``, ``cfg``,
``epoch``, ``history`` (rows so far), ``optimizer``, ``scheduler``, ``best_epoch`` and
``elapsed()`` (training seconds).

Built in: :class:`ProgressBar` (added when ``progress=True``), :class:`LoggingCallback`
(always added; messages under the ``graphkit`` logger), :class:`CSVLogger`,
:class:`TensorBoardLogger` and :class:`MLflowLogger` (optional extras), :class:`EarlyStopping`
and :class:`ValidationCurve`.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..exceptions import ConfigError
from ..utils import PathLike, atomic_write

__all__ = [
    "Callback", "ProgressBar", "LoggingCallback", "CSVLogger", "TensorBoardLogger", "MLflowLogger",
    "EarlyStopping", "ValidationCurve",
]

logger = logging.getLogger("graphkit")


def _numeric(logs: Dict[str, Any]) -> Dict[str, float]:
    """The finite numeric entries of a logs dict (``epoch`` left out)."""
    out = {}
    for k, v in logs.items():
        if k == "epoch" or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


def _validation(logs: Dict[str, Any]) -> Dict[str, float]:
    return {k: v for k, v in _numeric(logs).items() if k.startswith(("valid_", "val_"))}


class Callback:
    """Base class with every hook as a no-op; override the ones you need."""

    def on_fit_start(self, trainer: Any) -> None:
        """Called before the first epoch.

        Args:
            trainer: the running :class:`~graphkit.training.engine.Trainer`.
        """

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        """Called before an epoch's first batch.

        Args:
            trainer: the running trainer.
            epoch: the epoch about to start (1-based).
        """

    def on_batch_end(self, trainer: Any, batch: int, logs: Dict[str, Any]) -> None:
        """Called after every optimizer step.

        Args:
            trainer: the running trainer.
            batch: the batch just trained (0-based within its epoch).
            logs: ``{"epoch": ..., "loss": <the batch's mean loss>}``.
        """

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        """Called after every epoch (and its validation).

        Args:
            trainer: the running trainer.
            epoch: the epoch just finished (1-based).
            logs: the epoch's history row (loss, seconds, validation metrics when validated).
        """

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        """Called once the selected model is evaluated on test.

        Args:
            trainer: the trainer.
            result: the :class:`~graphkit.training.FitResult`.
        """


class ProgressBar(Callback):
    """A batch-level tqdm bar over the whole run.

    Its total is ``epochs × batches per epoch``; under ``max_time`` the total shrinks to
    the number of batches the remaining time allows at the measured rate, so the ETA
    honours whichever limit comes first.  The postfix shows the last epoch's loss and
    validation metrics.

    Args:
        refresh_seconds: how often the ``max_time`` estimate of the total is updated.
    """

    def __init__(self, refresh_seconds: float = 1.0) -> None:
        self.refresh_seconds = refresh_seconds
        self.bar: Any = None

    def on_fit_start(self, trainer: Any) -> None:
        from tqdm.auto import tqdm

        steps, epochs = trainer.steps, trainer.cfg.epochs
        self._full = epochs * steps
        initial = min((trainer.start_epoch - 1) * steps + trainer.start_batch, self._full)
        self._t0, self._n0, self._last = time.perf_counter(), initial, 0.0
        self.bar = tqdm(total=self._full, initial=initial, desc=type(trainer.model).__name__, unit="batch",
                        dynamic_ncols=True)

    def on_batch_end(self, trainer: Any, batch: int, logs: Dict[str, Any]) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        max_time = trainer.cfg.max_time
        now = time.perf_counter()
        if max_time is not None and now - self._last >= self.refresh_seconds:
            self._last = now
            done = self.bar.n - self._n0
            rate = done / max(now - self._t0, 1e-9)
            left = max(max_time - trainer.elapsed(), 0.0)
            self.bar.total = int(min(self._full, self.bar.n + math.ceil(rate * left)))
            self.bar.refresh()

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        if self.bar is None:
            return
        shown = {"epoch": epoch}
        loss = logs.get("loss", logs.get("train_loss"))
        if loss is not None:
            shown["loss"] = f"{loss:.4f}"
        shown.update({k.split("_", 1)[1]: f"{v:.4f}" for k, v in _validation(logs).items()})
        self.bar.set_postfix(shown)

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the bar (also done at the end of training)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __del__(self) -> None:  # a run that raised: do not leave a dangling bar
        try:
            self.close()
        except Exception:  # pragma: no cover
            pass


class LoggingCallback(Callback):
    """Messages under the ``graphkit`` logger (standard :mod:`logging`): the run at INFO when
    it starts and ends, every epoch at INFO, every batch at DEBUG.  Nothing is printed unless
    the application configures logging, e.g. ``logging.basicConfig(level=logging.INFO)``.

    Args:
        name: the logger name.
    """

    def __init__(self, name: str = "graphkit") -> None:
        self.log = logging.getLogger(name)

    def on_fit_start(self, trainer: Any) -> None:
        ds = trainer.dataset
        self.log.info("fit %s on %s (split %s): epochs %d from epoch %d, %d batches per epoch, device %s",
                      type(trainer.model).__name__, getattr(ds, "name", type(ds).__name__),
                      getattr(ds, "fingerprint", None), trainer.cfg.epochs, trainer.start_epoch, trainer.steps,
                      trainer.device)

    def on_batch_end(self, trainer: Any, batch: int, logs: Dict[str, Any]) -> None:
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("epoch %d batch %d loss %.6f", logs["epoch"], batch, logs["loss"])

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        if self.log.isEnabledFor(logging.INFO):
            parts = " ".join(f"{k}={v:.4f}" for k, v in _numeric(logs).items() if k != "batches")
            self.log.info("epoch %d %s", epoch, parts)

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        rec = result.record
        self.log.info("done: best epoch %s of %s (%s), %.1fs; test %s", rec.get("best_epoch"), rec.get("epochs_run"),
                      rec.get("stopped_by"), rec.get("train_seconds", float("nan")),
                      " ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))


class CSVLogger(Callback):
    """Writes the history, one row per epoch, to a CSV file after every epoch.

    The file is rewritten atomically each time (columns: the union of every row's keys,
    validation columns empty on epochs that were not validated), so it can be read while
    training runs.  After a resume it starts from the restored history, so the file is
    complete.

    Args:
        path: the CSV file.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.rows: List[Dict[str, Any]] = []

    def on_fit_start(self, trainer: Any) -> None:
        self.rows = [dict(r) for r in trainer.history]

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        import csv

        self.rows.append(dict(logs))
        columns: List[str] = []
        for r in self.rows:
            columns += [k for k in r if k not in columns]
        with atomic_write(self.path, "w") as fh:
            w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            w.writeheader()
            w.writerows(self.rows)


class TensorBoardLogger(Callback):
    """Scalars for TensorBoard: ``train/<loss>`` and ``valid/<metric>`` per epoch, the batch
    loss every ``log_every_n_batches`` steps, and the test metrics at the end.

    Needs the ``tensorboard`` package (``pip install "graphkit[tensorboard]"``).

    Args:
        log_dir: the event-file folder (e.g. ``runs/tb/lightgcn``).
        log_every_n_batches: batch-loss logging period (0: none).
    """

    def __init__(self, log_dir: PathLike, log_every_n_batches: int = 50) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise ConfigError("TensorBoardLogger needs the tensorboard package: "
                              "pip install 'graphkit[tensorboard]' (or pip install tensorboard)") from None
        self.log_dir = str(log_dir)
        self.log_every_n_batches = int(log_every_n_batches)
        self.writer: Any = None
        self._step = 0

    def on_fit_start(self, trainer: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(self.log_dir)
        self._step = (trainer.start_epoch - 1) * trainer.steps + trainer.start_batch

    def on_batch_end(self, trainer: Any, batch: int, logs: Dict[str, Any]) -> None:
        self._step += 1
        if self.log_every_n_batches and self._step % self.log_every_n_batches == 0:
            self.writer.add_scalar("train/batch_loss", logs["loss"], self._step)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        for k, v in _numeric(logs).items():
            if k.startswith("valid_"):
                tag = "valid/" + k[len("valid_"):]
            elif k.startswith("val_"):
                tag = "valid/" + k[len("val_"):]
            else:
                tag = "train/" + k
            self.writer.add_scalar(tag, v, epoch)
        self.writer.flush()

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        for k, v in result.metrics.items():
            self.writer.add_scalar("test/" + k, v, result.record.get("best_epoch", 0))
        self.writer.close()


def _mlflow_key(name: str) -> str:
    # MLflow keys allow letters, digits, _ - . space / only
    return name.replace("@", "_at_")


class MLflowLogger(Callback):
    """Logs a run to MLflow: parameters (model hyper-parameters and training options) at the
    start, the epoch rows as metrics (``step = epoch``), the test metrics and the record's
    split fingerprint at the end.  ``@`` in metric names becomes ``_at_`` (MLflow's rule).

    Needs ``mlflow`` (``pip install "graphkit[mlflow]"``).  Uses the active MLflow run when
    there is one, else starts (and ends) its own.

    Args:
        experiment: experiment name (default: MLflow's default experiment).
        run_name: run name.
        tracking_uri: where to log (default: MLflow's, ``./mlruns``).
    """

    def __init__(self, experiment: Optional[str] = None, run_name: Optional[str] = None,
                 tracking_uri: Optional[str] = None) -> None:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise ConfigError("MLflowLogger needs the mlflow package: "
                              "pip install 'graphkit[mlflow]' (or pip install mlflow)") from None
        self.experiment, self.run_name, self.tracking_uri = experiment, run_name, tracking_uri
        self._own = False

    def on_fit_start(self, trainer: Any) -> None:
        import mlflow

        from .engine import config_record

        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        if self.experiment:
            mlflow.set_experiment(self.experiment)
        if mlflow.active_run() is None:
            mlflow.start_run(run_name=self.run_name)
            self._own = True
        params = {f"train.{k}": v for k, v in config_record(trainer.cfg).items()}
        hp = trainer.model.hparams() if hasattr(trainer.model, "hparams") else {}
        params.update({f"model.{k}": v for k, v in hp.items()})
        params["model"] = type(trainer.model).__name__
        params["dataset"] = getattr(trainer.dataset, "name", None)
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        import mlflow

        mlflow.log_metrics({_mlflow_key(k): v for k, v in _numeric(logs).items()}, step=epoch)

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        import mlflow

        mlflow.log_metrics({_mlflow_key("test_" + k): v for k, v in result.metrics.items()})
        mlflow.set_tags({"graphkit.fingerprint": str(result.record.get("fingerprint")),
                         "graphkit.stopped_by": str(result.record.get("stopped_by"))})
        if self._own:
            mlflow.end_run()
            self._own = False


class EarlyStopping(Callback):
    """Stops training when a logged validation value has not improved for ``patience``
    validations (the trainer's own ``patience`` does the same on its selection metric;
    this one watches any logged value).

    Args:
        monitor: the history key, e.g. ``"valid_ndcg@20"`` or ``"val_loss"``.
        mode: ``"max"`` or ``"min"``.
        patience: validations without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(self, monitor: str, mode: str = "max", patience: int = 5, min_delta: float = 0.0) -> None:
        if mode not in ("max", "min"):
            raise ConfigError(f"EarlyStopping mode must be 'max' or 'min', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"EarlyStopping patience must be a positive integer, got {patience!r}")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, float(min_delta)
        self.best: Optional[float] = None
        self.bad = 0
        self.stopped_epoch: Optional[int] = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        sign = 1.0 if self.mode == "max" else -1.0
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.bad = float(value), 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            trainer.should_stop = True
            self.stopped_epoch = epoch


class ValidationCurve(Callback):
    """Records a validation metric against wall-clock seconds: a time-to-quality curve.

    The clock starts when the callback is built, so build it just before ``graphkit.fit`` to
    count model preparation (e.g. LightGCN's SVD warm start) and validation time as a user
    waiting for the model would.

    Example::

        curve = ValidationCurve("recall@20")
        graphkit.fit("lightgcn", "gowalla", preset="fast", max_time=600, callbacks=[curve])
        curve.points          # [{"epoch": 2, "seconds": 24.1, "value": 0.1223}, ...]
        curve.best_by(300)    # best validation value reached within 300 s

    Args:
        metric: the validation metric, without the ``valid_`` prefix.
    """

    def __init__(self, metric: str = "recall@20") -> None:
        self.metric = metric
        self.t0 = time.perf_counter()
        self.paused = 0.0  # seconds subclasses take off the clock (their own evaluations)
        self.points: List[Dict[str, float]] = []

    def elapsed(self) -> float:
        """Seconds on the clock since construction."""
        return time.perf_counter() - self.t0 - self.paused

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        """Append ``(epoch, seconds, value)`` when the epoch was validated.

        Args:
            trainer: the running trainer (unused).
            epoch: the epoch just finished (1-based).
            logs: the epoch's row: ``loss``, ``seconds`` and the ``valid_*`` metrics.
        """
        value = logs.get(f"valid_{self.metric}", logs.get(f"val_{self.metric}"))
        if value is not None:
            self.points.append({"epoch": epoch, "seconds": self.elapsed(), "value": float(value)})

    def best_by(self, seconds: float) -> float:
        """The best value among the validations finished within ``seconds`` (NaN if none)."""
        seen = [p["value"] for p in self.points if p["seconds"] <= seconds]
        return max(seen) if seen else float("nan")
