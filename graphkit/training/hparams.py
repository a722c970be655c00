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


def merge_preset(cls: Type, dataset: Any, hparams: Dict[str, Any], seed: int, use_preset: bool) -> Dict[str, Any]:
    """The hyper-parameters of a run: ``cls.default_train``, then the preset of the dataset
    (``cls.presets[dataset.name]``, model and train parts) when ``use_preset``, then ``hparams``,
    then ``seed``.

    Args:
        cls: the model class.
        dataset: the loaded dataset (its ``name`` picks the preset).
        hparams: the caller's keyword arguments (they win over the preset).
        seed: the run's seed.
        use_preset: apply the dataset's preset.
    """
    merged: Dict[str, Any] = dict(getattr(cls, "default_train", {}))
    if use_preset:
        p = getattr(cls, "presets", {}).get(getattr(dataset, "name", None), {})
        merged.update(p.get("model", {}))
        merged.update(p.get("train", {}))
    merged.update(hparams)
    merged["seed"] = seed
    return merged


__all__ = ["split_hparams", "merge_preset"]
