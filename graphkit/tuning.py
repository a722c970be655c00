"""Hyper-parameter search for a dataset without a preset: :func:`tune` (``graphkit tune``).

Built on Optuna (an optional extra: ``pip install 'graphkit[tune]'``): a TPE sampler, a
median pruner fed with each trial's validation curve, and optional SQLite storage so that a
killed search resumes where it stopped.  Every trial trains with :func:`graphkit.fit` on the
standardized split and is scored on the *validation* split; trials never evaluate the test
split.  The best trial's model is evaluated on test once, at the end.

Example::

    import graphkit
    res = graphkit.tune("lightgcn", dataset="ml-1m", max_time=1200, storage="runs/tune-ml1m.db")
    res.best_params, res.best_value     # validation recall@20 of the best trial
    res.result.metrics                  # its test metrics (evaluated once)
    res.trials                          # one row per trial (pandas)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Type, Union

from .exceptions import ConfigError, GraphkitError
from .training.result import FitResult
from .utils import is_finite_real

__all__ = ["tune", "TuneResult", "search_space"]

#: A search-space entry: ``("log", low, high)`` (log-uniform float), ``("float", low, high)``,
#: ``("int", low, high)`` or ``("choice", [values...])``.
Space = Dict[str, Tuple[Any, ...]]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("graphkit.tune needs Optuna, an optional extra: pip install 'graphkit[tune]' "
                          "(or pip install optuna)") from None
    return optuna


def search_space(model: Union[str, Type]) -> Space:
    """The default search space of a model (``cls.search_space``: the ranges its paper searched).

    Args:
        model: a model class or registered name.
    """
    from .training import _resolve_model

    cls, _ = _resolve_model(model)
    space = getattr(cls, "search_space", None)
    if not space:
        raise ConfigError(f"{cls.__name__} has no default search space; pass space={{name: ('log', lo, hi), ...}}")
    return dict(space)


def _kind(spec: Any) -> Optional[str]:
    """The kind of a well-formed :data:`Space` entry (``"log"``, ``"float"``, ``"int"``,
    ``"choice"``), ``None`` for a malformed one."""
    kind = spec[0] if isinstance(spec, (tuple, list)) and spec else None
    if kind in ("log", "float", "int"):
        return kind if len(spec) == 3 and all(is_finite_real(v) for v in spec[1:]) else None
    if kind == "choice":
        return kind if len(spec) == 2 and isinstance(spec[1], (list, tuple)) else None
    return None


def _suggest(trial: Any, name: str, spec: Tuple[Any, ...]) -> Any:
    kind = _kind(spec)
    if kind == "log":
        return trial.suggest_float(name, float(spec[1]), float(spec[2]), log=True)
    if kind == "float":
        return trial.suggest_float(name, float(spec[1]), float(spec[2]))
    if kind == "int":
        return trial.suggest_int(name, int(spec[1]), int(spec[2]))
    if kind == "choice":
        return trial.suggest_categorical(name, list(spec[1]))
    raise ConfigError(f"search space entry {name!r}: expected ('log'|'float', low, high), ('int', low, high) or "
                      f"('choice', [values]), got {spec!r}")


def _start_values(cls: Type, ds: Any, preset: Any, space: Space, widen: bool) -> Tuple[Space, Dict[str, Any]]:
    """The first trial of a new study: the searched hyper-parameters as a plain
    :func:`graphkit.fit` with ``preset`` would set them (the preset, else ``default_train``, else
    the model's constructor default), so a search never ends below its starting point on
    validation (Optuna's ``enqueue_trial``).  With ``widen`` (the model's default space), a range
    that leaves a starting value out is widened to contain it (LightGCN's fast recipe trains at lr
    4e-2, above the paper's search range); otherwise such a value is left to the sampler.

    Returns:
        ``(space, start)``: the (possibly widened) space and the values to enqueue.
    """
    import inspect

    from .training.hparams import merge_preset

    merged = merge_preset(cls, ds, {}, seed=0, use_preset=preset)
    init = inspect.signature(cls.__init__).parameters
    space, start = dict(space), {}
    for name, spec in space.items():
        value = merged.get(name, init[name].default if name in init else inspect.Parameter.empty)
        kind = _kind(spec)  # a malformed entry is left alone here: _suggest names it in a ConfigError
        if value is inspect.Parameter.empty or value is None or kind is None:
            continue
        if kind == "choice":
            inside = value in list(spec[1])
            if not inside and widen:
                space[name], inside = ("choice", [*spec[1], value]), True
        elif is_finite_real(value):
            inside = spec[1] <= value <= spec[2]
            if not inside and widen:
                space[name], inside = (kind, min(spec[1], value), max(spec[2], value)), True
        else:
            inside = False
        if inside:
            start[name] = value
    return space, start


class _Pruning:
    """Reports every validation of a trial to Optuna and prunes it when the pruner says so."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.key = trial, f"valid_{metric}"

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        value = logs.get(self.key)
        if value is None:
            return
        self.trial.report(float(value), step=int(epoch))
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"pruned at epoch {epoch} ({self.key} = {value:.4f})")


@dataclass
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes:
        result: the best trial's :class:`~graphkit.training.FitResult` (model, history,
            record), with its test metrics evaluated once, at the end.
        best_params: the best trial's hyper-parameters.
        best_value: its validation score (the tuned metric).
        trials: a pandas DataFrame, one row per trial (number, state, value, seconds, params).
        study: the Optuna study.
    """

    result: FitResult
    best_params: Dict[str, Any]
    best_value: float
    trials: Any
    study: Any

    def __repr__(self) -> str:
        return (f"TuneResult({len(self.trials)} trials, best {self.best_value:.4f} with {self.best_params}, "
                f"test {self.result.metrics})")


def _storage_url(storage: Optional[str]) -> Optional[str]:
    if storage is None or "://" in str(storage):
        return storage
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def tune(
    model: Union[str, Type],
    dataset: Union[str, Any],
    *,
    max_time: Optional[float] = None,
    n_trials: Optional[int] = None,
    space: Optional[Space] = None,
    metric: str = "recall@20",
    seed: int = 0,
    trial_seed: int = 2020,
    trial_max_time: Optional[float] = None,
    storage: Optional[str] = None,
    study_name: Optional[str] = None,
    preset: Union[bool, str] = False,
    data_dir: Optional[str] = None,
    warmup_evaluations: int = 2,
    start_from_preset: bool = True,
    **fixed: Any,
) -> TuneResult:
    """Search hyper-parameters of a recommendation model on a dataset's validation split.

    Args:
        model: a recommendation model class or registered name (``"lightgcn"``, ``"ultragcn"``, ``"als"``).
        dataset: a dataset name or a loaded :class:`~graphkit.datasets.RecDataset`.
        max_time: wall-clock budget of the whole search in seconds (a trial started inside it is
            cut at the budget's end).  At least one of ``max_time`` and ``n_trials`` is required.
        n_trials: stop after this many trials in total (a resumed study counts its earlier ones).
        space: ``{name: spec}`` (see :data:`Space`); default the model's :func:`search_space`.
        metric: validation metric to maximise (must be one of the trainer's ``ks``).
        seed: seed of the TPE sampler.
        trial_seed: training seed of every trial (one seed: trials differ only in hyper-parameters).
        trial_max_time: cap on one trial's training time in seconds.
        storage: a SQLite file (``"runs/tune.db"``) or an Optuna storage URL: the study is kept
            there and a killed search resumes from it (same ``study_name``).
        study_name: name of the study in ``storage`` (default ``"<model>-<dataset>"``).
        preset: start every trial from the model's preset (``"paper"``/``"fast"``) or from its
            defaults (``False``, the default: a dataset without a preset).
        data_dir: where dataset files live.
        warmup_evaluations: validations a trial always gets before it can be pruned.
        start_from_preset: the first trial of a new study trains with the values a plain
            ``graphkit.fit(model, dataset, preset=preset)`` would use for the searched
            hyper-parameters (Optuna's ``enqueue_trial``), so the best trial is at least as good as
            that starting point on validation.  A starting value outside the model's default
            space widens it (recorded in the result's ``record["tuning"]["space"]``); a value
            outside a ``space`` you pass is left to the sampler.
        **fixed: hyper-parameters shared by every trial (e.g. ``epochs=200``, ``num_threads=2``).

    Returns:
        A :class:`TuneResult`.

    Raises:
        ConfigError: Optuna missing, a node-classification model, no budget, a bad space entry.
    """
    optuna = _optuna()
    from . import datasets as gk_datasets
    from .training import _resolve_model, fit
    from .training.recommendation import RecTrainConfig, _test_metrics

    cls, instance = _resolve_model(model)
    if instance is not None:
        raise ConfigError("tune needs a model class or name (every trial builds its own model)")
    if getattr(cls, "task", "recommendation") != "recommendation":
        raise ConfigError(f"graphkit.tune supports recommendation models; {cls.__name__} is a {cls.task} model")
    if max_time is None and n_trials is None:
        raise ConfigError("tune needs a budget: max_time (seconds) and/or n_trials")
    if max_time is not None and not (isinstance(max_time, (int, float)) and math.isfinite(max_time) and max_time > 0):
        raise ConfigError(f"max_time must be a positive number of seconds, got {max_time!r}")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ConfigError(f"n_trials must be a positive integer, got {n_trials!r}")
    own_space = space is not None
    space = dict(space) if own_space else search_space(cls)
    clash = sorted(set(space) & set(fixed))
    if clash:
        raise ConfigError(f"{', '.join(clash)} both searched (space) and fixed; drop one")
    ds = gk_datasets.load(dataset, root=data_dir) if isinstance(dataset, str) else dataset
    name = study_name or f"{cls.__name__.lower()}-{getattr(ds, 'name', 'data')}"
    study = optuna.create_study(
        study_name=name, storage=_storage_url(storage), load_if_exists=storage is not None, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0, n_min_trials=3),
    )
    if not study.user_attrs.get("fingerprint"):
        study.set_user_attr("fingerprint", getattr(ds, "fingerprint", None))
        study.set_user_attr("metric", metric)
    elif study.user_attrs["fingerprint"] != getattr(ds, "fingerprint", None) or study.user_attrs["metric"] != metric:
        raise ConfigError(f"study {name!r} in {storage} was run on split {study.user_attrs['fingerprint']} for "
                          f"{study.user_attrs['metric']}; this call is {getattr(ds, 'fingerprint', None)} / {metric}")
    start: Dict[str, Any] = {}
    if start_from_preset:
        space, start = _start_values(cls, ds, preset, space, widen=not own_space)
    if start and not study.trials:  # a new study (a resumed one already ran its first trial)
        study.enqueue_trial(start)
    t_end = None if max_time is None else time.monotonic() + float(max_time)
    best: Dict[str, Any] = {"value": -math.inf, "result": None}
    ks = fixed.pop("ks", None)
    if ks is not None and (isinstance(ks, (str, bytes)) or not isinstance(ks, (list, tuple))):
        raise ConfigError(f"ks must be a list of positive integers (cut-offs), got {ks!r}")
    ks = tuple(ks) if ks is not None else (int(metric.partition("@")[2] or 20),)

    errors: list = []

    def objective(trial: Any) -> float:
        params = {k: _suggest(trial, k, spec) for k, spec in space.items()}
        budget = trial_max_time
        if t_end is not None:
            left = t_end - time.monotonic()
            if left <= 1.0:
                raise optuna.TrialPruned("search budget exhausted")
            budget = left if budget is None else min(budget, left)
        hp = {**fixed, **params, "ks": ks, "select_metric": metric, "evaluate_test": False, "progress": False}
        if budget is not None:
            hp["max_time"] = budget
        t0 = time.perf_counter()
        try:
            res = fit(cls, ds, preset=preset, seed=trial_seed, callbacks=[_Pruning(trial, metric)], **hp)
        except GraphkitError as exc:
            # a failed trial is recorded (NaN value, the error as a user attribute), never logged by
            # Optuna with a traceback; a configuration error would fail every trial: stop the study
            errors.append(exc)
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            if isinstance(exc, ConfigError):
                trial.study.stop()
            return float("nan")
        value = float(res.record["best_valid"])
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        trial.set_user_attr("best_epoch", res.record["best_epoch"])
        if value > best["value"]:
            best.update(value=value, result=res, params=params)
        return value

    done = [t for t in study.trials if t.state.is_finished()]
    remaining = None if n_trials is None else max(0, n_trials - len(done))
    if remaining != 0 and (t_end is None or t_end > time.monotonic()):
        study.optimize(objective, n_trials=remaining,
                       timeout=None if t_end is None else max(1.0, t_end - time.monotonic()),
                       gc_after_trial=False)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        if errors:
            raise errors[0]
        raise ConfigError("no trial finished inside the budget; raise max_time or n_trials")
    best_trial = study.best_trial
    result = best["result"] if best.get("params") == best_trial.params else None
    if result is None:  # the best trial ran in an earlier (killed) process: retrain it, same seed,
        # up to its selected epoch (the trial may have been cut by its time budget, so training
        # to the configured epochs would give another model); deterministic on CPU
        hp = {**fixed, **best_trial.params, "ks": ks, "select_metric": metric, "evaluate_test": False,
              "progress": False}
        if best_trial.user_attrs.get("best_epoch"):
            hp["epochs"] = int(best_trial.user_attrs["best_epoch"])
        result = fit(cls, ds, preset=preset, seed=trial_seed, **hp)
    memory = int(result.record.get("train", {}).get("eval_memory_mb", RecTrainConfig.eval_memory_mb))
    result.metrics = _test_metrics(result.model, ds, RecTrainConfig(ks=tuple(ks), eval_memory_mb=memory))
    result.record["tuning"] = {"study": name, "storage": storage, "trials": len(study.trials),
                               "best_trial": best_trial.number, "metric": metric, "space": {k: list(v) if
                               isinstance(v, tuple) else v for k, v in space.items()}, "sampler_seed": seed,
                               "start": start}
    trials = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs"))
    return TuneResult(result=result, best_params=dict(best_trial.params), best_value=float(best_trial.value),
                      trials=trials, study=study)
