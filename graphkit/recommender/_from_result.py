"""A :func:`graphkit.fit` result as a serving :class:`~graphkit.recommender.Recommender`.

:func:`from_result` (called by :meth:`Recommender.from_result
<graphkit.recommender.Recommender.from_result>`) takes the trained model of a
:class:`~graphkit.training.FitResult` and the :class:`~graphkit.datasets.recommendation.RecDataset`
it was trained on, and sets the learned attributes that :meth:`Recommender.fit
<graphkit.recommender.Recommender.fit>` would set: raw-id maps, ``seen_`` (the dataset's
``full_train``: train + validation), ``popularity_``, history, record and the serving
embeddings.  No training happens here.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import CheckpointError, ConfigError, GraphError
from ..utils import PathLike

# Training options of a run that are not hyper-parameters of a Recommender: seed and device
# are constructor arguments of their own, the rest describe where/how that run wrote and logged.
_NOT_HPARAMS = ("seed", "device", "progress", "checkpoint_dir", "checkpoint_every")


def _load_dataset(record: Dict[str, Any], data_dir: Optional[PathLike]) -> Any:
    """The dataset named in ``record``, loaded with the record's split parameters."""
    from .. import datasets

    name = record.get("dataset")
    if not isinstance(name, str) or not name:
        raise ConfigError("the result does not name its dataset (record['dataset']); pass dataset=")
    kwargs: Dict[str, Any] = {}
    if isinstance(record.get("val_ratio"), (int, float)) and not isinstance(record.get("val_ratio"), bool):
        kwargs["val_ratio"] = record["val_ratio"]
    if isinstance(record.get("split_seed"), int) and not isinstance(record.get("split_seed"), bool):
        kwargs["seed"] = record["split_seed"]
    return datasets.load(name, root=data_dir, **kwargs)


def _model_name(model: Any) -> Any:
    """The registered name of ``model``'s class, else the class itself."""
    from ..models import available_models, get_model

    for name in available_models():
        if get_model(name) is type(model):
            return name
    return type(model)


def _serving_embeddings(model: Any, ds: Any, device: torch.device) -> Any:
    """``model.embeddings()``, preparing the model with the training graph first when it
    has not been prepared (a model rebuilt from a saved result)."""
    try:
        with torch.no_grad():
            return model.embeddings()
    except GraphError:
        pass
    # prepare() sets data-dependent state; some models also (re)initialise weights there
    # (LightGCN's init="svd"), so the trained weights are put back afterwards.
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.prepare(ds.train, ds.graph().to(device))
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        return model.embeddings()


def from_result(cls: Any, result: Any, *, dataset: Any = None, data_dir: Optional[PathLike] = None,
                user_col: str = "user", item_col: str = "item") -> Any:
    """:meth:`Recommender.from_result <graphkit.recommender.Recommender.from_result>` as ``cls``."""
    import pandas as pd

    from ..models import RecommenderModel

    record = dict(getattr(result, "record", None) or {})
    model = getattr(result, "model", None)
    if record.get("task") != "recommendation" or not isinstance(model, RecommenderModel):
        raise ConfigError(
            f"from_result needs the result of graphkit.fit on a recommendation dataset, got a result with task "
            f"{record.get('task')!r} and model {type(model).__name__}")
    ds = dataset if dataset is not None else getattr(result, "dataset", None)
    loaded = ds is None
    if loaded:
        ds = _load_dataset(record, data_dir)
    if not all(hasattr(ds, a) for a in ("num_users", "num_items", "train", "full_train", "graph")):
        raise ConfigError(f"dataset must be the RecDataset the model was trained on, got {type(ds).__name__}")
    U, I = int(ds.num_users), int(ds.num_items)
    if (model.num_users, model.num_items) != (U, I):
        raise ConfigError(f"the model has {model.num_users} users and {model.num_items} items, the dataset "
                          f"{getattr(ds, 'name', '')!r} has {U} users and {I} items")
    saved, now = record.get("fingerprint"), getattr(ds, "fingerprint", None)
    if (loaded or saved is not None) and saved != now:
        where = f"dataset {record.get('dataset')!r} loaded now" if loaded else "the dataset given"
        raise CheckpointError(
            f"{where} has split fingerprint {now!r}, the result was trained on fingerprint {saved!r} (files or split "
            "changed?); pass the dataset the model was trained on as dataset=")
    user_ids, item_ids = getattr(ds, "user_ids", None), getattr(ds, "item_ids", None)
    user_ids = np.arange(U, dtype=np.int64) if user_ids is None else np.asarray(user_ids)
    item_ids = np.arange(I, dtype=np.int64) if item_ids is None else np.asarray(item_ids)
    if user_ids.shape != (U,) or item_ids.shape != (I,):
        raise ConfigError(f"the dataset's id maps ({user_ids.shape[0]} users, {item_ids.shape[0]} items) do not "
                          f"match its num_users/num_items ({U}, {I})")

    # seen_: everything a user has interacted with before test (train + validation)
    seen = sp.csr_matrix(ds.full_train, dtype=np.float32, copy=True)
    seen.sum_duplicates()
    rows = np.repeat(np.arange(U, dtype=np.int64), np.diff(seen.indptr))
    train = sp.csr_matrix(ds.train)
    train_keys = np.unique(np.repeat(np.arange(U, dtype=np.int64), np.diff(train.indptr)) * I + train.indices)
    train_mask = np.isin(rows * I + seen.indices, train_keys)
    if int(train_mask.sum()) != train_keys.shape[0]:
        raise ConfigError("the dataset's train interactions are not all in its full_train (train + validation)")

    # constructor arguments: the run's model and training hyper-parameters
    train_cfg = dict(record.get("train") or {})
    hparams = {k: v for k, v in model.hparams().items() if k not in ("num_users", "num_items")}
    hparams.update({k: v for k, v in train_cfg.items() if k not in _NOT_HPARAMS})
    val = record.get("val_ratio")
    ok_val = isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val) and 0 <= val < 1
    seed = record.get("seed")
    rec = cls(_model_name(model), user_col=user_col, item_col=item_col, validation=val if ok_val else None,
              seed=seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 2020,
              device=train_cfg.get("device"), **hparams)

    tensors = list(model.parameters()) + list(model.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    model.eval()
    ue, ie = _serving_embeddings(model, ds, device)
    history = getattr(result, "history", None)

    rec._set_learned(model, user_ids, item_ids, seen, train_mask,
                     history.copy() if isinstance(history, pd.DataFrame) else pd.DataFrame(history), record, ue, ie)
    return rec
