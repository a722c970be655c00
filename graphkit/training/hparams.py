"""Splitting ``graphkit.fit``'s keyword arguments into model and training hyper-parameters."""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Dict, Sequence, Tuple, Type

from ..exceptions import ConfigError


def split_hparams(
    cls: Type,
    config_cls: Type,
    hparams: Dict[str, Any],
    data_args: Sequence[str] = (),
    extra_options: Sequence[str] = (),
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Route each hyper-parameter to the model constructor or the training config.

    Args:
        cls: the model class; its ``__init__`` parameters are the model hyper-parameters.
        config_cls: the training-config dataclass; its fields are the training options.
        hparams: the keyword arguments to route.
        data_args: constructor parameters filled from the dataset (e.g. ``num_users``), not
            accepted as hyper-parameters.
        extra_options: further accepted names handled by the caller (listed in the error only).

    Returns:
        ``(model_kwargs, train_kwargs)``.

    Raises:
        ConfigError: an unknown name, listing the valid ones; or a model whose constructor
            takes a name that is also a training option (``seed``, ``lr``, ...): such a name
            would silently go to one of them, so the model must rename it.
    """
    skip = {"self", *data_args}
    init_names = [n for n, p in inspect.signature(cls.__init__).parameters.items()
                  if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    train_names = [f.name for f in dataclasses.fields(config_cls)]
    clash = sorted(set(init_names) & set(train_names))
    if clash:
        raise ConfigError(
            f"{cls.__name__}.__init__ takes {', '.join(map(repr, clash))}, which "
            f"{'is a training option' if len(clash) == 1 else 'are training options'} of {config_cls.__name__}; "
            "rename the model argument (e.g. 'pretext_seed' instead of 'seed')"
        )
    model_kw: Dict[str, Any] = {}
    train_kw: Dict[str, Any] = {}
    for key, value in hparams.items():
        if key in init_names:
            model_kw[key] = value
        elif key in train_names:
            train_kw[key] = value
        else:
            extra = f"; dataset: {', '.join(extra_options)}" if extra_options else ""
            raise ConfigError(
                f"unknown hyper-parameter {key!r} for {cls.__name__}; model: {', '.join(init_names)}; "
                f"training: {', '.join(train_names)}{extra}"
            )
    return model_kw, train_kw


#: Values of ``graphkit.fit(..., preset=...)``.
PRESET_CHOICES = (True, False, None, "paper", "fast")


def preset_for(cls: Type, dataset_name: Any, preset: Any) -> Dict[str, Any]:
    """The preset of ``cls`` for a dataset, as ``{"model": {...}, "train": {...}}``.

    ``preset=True`` or ``"paper"``: the paper's protocol (``cls.presets``).  ``"fast"``: the
    paper's preset updated by the model's fast recipe (``cls.fast_presets[dataset]``, or its
    ``"*"`` entry for any dataset), chosen on validation for time-to-quality.
    ``False``/``None``: no preset.

    Args:
        cls: the model class.
        dataset_name: the dataset's name (``dataset.name``).
        preset: ``True``/``"paper"``, ``"fast"`` or ``False``/``None``.

    Raises:
        ConfigError: an unknown ``preset`` value, or ``"fast"`` for a model without a fast recipe.
    """
    if isinstance(preset, str) and preset not in ("paper", "fast") or not isinstance(preset, (bool, str, type(None))):
        raise ConfigError(f"preset must be True/'paper', 'fast' or False, got {preset!r}")
    if not preset:
        return {}
    paper = getattr(cls, "presets", {}).get(dataset_name, {})
    out = {"model": dict(paper.get("model", {})), "train": dict(paper.get("train", {}))}
    if preset == "fast":
        table = getattr(cls, "fast_presets", {})
        if not table:
            raise ConfigError(f"{cls.__name__} has no fast recipe (preset='fast'); use preset='paper' or False")
        fast = table.get(dataset_name, table.get("*"))
        if fast is None:
            raise ConfigError(f"{cls.__name__} has no fast recipe for {dataset_name!r} "
                              f"(recipes for: {', '.join(sorted(table))})")
        out["model"].update(fast.get("model", {}))
        out["train"].update(fast.get("train", {}))
    return out


def merge_preset(cls: Type, dataset: Any, hparams: Dict[str, Any], seed: int, use_preset: Any) -> Dict[str, Any]:
    """The hyper-parameters of a run: ``cls.default_train``, then the preset of the dataset
    (:func:`preset_for`: model and train parts) when ``use_preset``, then ``hparams``, then
    ``seed``.

    Args:
        cls: the model class.
        dataset: the loaded dataset (its ``name`` picks the preset).
        hparams: the caller's keyword arguments (they win over the preset).
        seed: the run's seed.
        use_preset: ``True``/``"paper"``, ``"fast"`` or ``False`` (see :func:`preset_for`).
    """
    merged: Dict[str, Any] = dict(getattr(cls, "default_train", {}))
    p = preset_for(cls, getattr(dataset, "name", None), use_preset)
    merged.update(p.get("model", {}))
    merged.update(p.get("train", {}))
    merged.update(hparams)
    merged["seed"] = seed
    return merged


def build_run(cls: Type, instance: Any, dataset: Any, hparams: Dict[str, Any], seed: int, preset: Any,
              config_cls: Type, data_args: Sequence[str], make: Any,
              extra_options: Sequence[str] = ()) -> Tuple[Any, Any]:
    """The model and the validated training config of one :func:`graphkit.fit` call.

    Merges ``default_train``, the preset and ``hparams`` (:func:`merge_preset`; no preset for a
    built ``instance``), routes them (:func:`split_hparams`), validates the config, seeds
    everything and builds the model as ``make(**model_kwargs)`` unless ``instance`` is given.

    Args:
        cls: the model class.
        instance: an already built model, or ``None``.
        dataset: the loaded dataset (its ``name`` picks the preset).
        hparams: the caller's keyword arguments.
        seed: the run's seed.
        preset: ``True``/``"paper"``, ``"fast"`` or ``False``.
        config_cls: the task's training-config dataclass.
        data_args: constructor arguments filled from the dataset.
        make: builds the model from the model keyword arguments.
        extra_options: names handled by the caller (listed in errors only).

    Returns:
        ``(model, config)``.
    """
    from ..utils import seed_everything

    merged = merge_preset(cls, dataset, hparams, seed, use_preset=preset if instance is None else False)
    model_kw, train_kw = split_hparams(cls, config_cls, merged, data_args=data_args, extra_options=extra_options)
    cfg = config_cls(**train_kw)
    cfg.validate()
    seed_everything(cfg.seed)  # validated: a Python int in [0, 2**32)
    if instance is None:
        instance = make(**model_kw)
    elif model_kw:
        raise ConfigError(f"model hyper-parameters {sorted(model_kw)} cannot be applied to an already built model")
    return instance, cfg


__all__ = ["split_hparams", "merge_preset", "preset_for", "build_run", "PRESET_CHOICES"]
