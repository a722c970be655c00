"""Saving and loading a fitted :class:`~graphkit.recommender.Recommender` (a folder, no pickle).

Layout (``FORMAT_VERSION`` 1): ``metadata.json`` (format version, model name and
hyper-parameters, Recommender parameters, raw-id maps with their types, record, history,
package versions, sha256 of every other file), ``weights.safetensors`` (the model's
``state_dict``), ``embeddings.safetensors`` (final user/item embeddings used for serving)
and ``interactions.safetensors`` (``seen_`` as CSR arrays and the train/validation mask).
:meth:`Recommender.save <graphkit.recommender.Recommender.save>` and
:meth:`Recommender.load <graphkit.recommender.Recommender.load>` call :func:`save` and
:func:`load` here.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import CheckpointError, ConfigError
from ..utils import PathLike, atomic_write, package_versions, sha256_file
from ._ids import _decode_ids, _encode_ids

#: Version of the folder layout written by :meth:`Recommender.save`.
FORMAT_VERSION = 1
#: Versions :meth:`Recommender.load` can read.
SUPPORTED_FORMAT_VERSIONS: Tuple[int, ...] = (1,)
_FORMAT_NAME = "graphkit.Recommender"
_FILES = ("weights.safetensors", "embeddings.safetensors", "interactions.safetensors")


def save(rec: Any, path: PathLike) -> Path:
    """:meth:`Recommender.save <graphkit.recommender.Recommender.save>` of ``rec``."""
    from ..training.result import _jsonable, save_state_dict

    rec._check_fitted()
    path = Path(path)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / "metadata.json").is_file())):
        raise CheckpointError(f"{path} exists and is not a saved Recommender; refusing to replace it")
    params = rec.get_params()
    params["model"] = rec._registered_name()
    for key, value in params.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise CheckpointError(f"cannot save parameter {key}={value!r}: it is not JSON-serializable") from None
    hp = {k: v for k, v in rec.model_.hparams().items() if k not in ("num_users", "num_items")}
    try:
        json.dumps(_jsonable(hp), allow_nan=False)
    except ValueError as exc:
        raise CheckpointError(f"cannot save model hyper-parameters {hp!r}: {exc}") from None
    hist = rec.history_
    history = {"columns": [str(c) for c in hist.columns],
               "rows": [[None if (isinstance(v, float) and not math.isfinite(v)) else _jsonable(v) for v in row]
                        for row in hist.itertuples(index=False, name=None)]}
    meta: Dict[str, Any] = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": {"name": params["model"], "class": type(rec.model_).__name__, "hparams": _jsonable(hp)},
        "params": params,
        "num_users": int(rec.n_users_),
        "num_items": int(rec.n_items_),
        "user_ids": _encode_ids(rec._user_ids, "user"),
        "item_ids": _encode_ids(rec._item_ids, "item"),
        "record": _jsonable(rec.record_),
        "history": history,
        "versions": package_versions(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        save_state_dict(tmp / "weights.safetensors", rec.model_.state_dict())
        save_state_dict(tmp / "embeddings.safetensors", {"user": rec._user_emb, "item": rec._item_emb})
        seen = rec.seen_
        save_state_dict(tmp / "interactions.safetensors", {
            "seen_indptr": torch.from_numpy(seen.indptr.astype(np.int64)),
            "seen_indices": torch.from_numpy(seen.indices.astype(np.int64)),
            "seen_data": torch.from_numpy(seen.data.astype(np.float32)),
            "train_mask": torch.from_numpy(rec._train_mask.astype(np.uint8)),
        })
        meta["sha256"] = {name: sha256_file(tmp / name) for name in _FILES}
        with atomic_write(tmp / "metadata.json", "w") as fh:
            json.dump(meta, fh, indent=1, allow_nan=False)
            fh.write("\n")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "saved")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load(cls: Any, path: PathLike, device: Optional[str] = None) -> Any:
    """:meth:`Recommender.load <graphkit.recommender.Recommender.load>` as ``cls``."""
    from ..datasets.recommendation import binary_csr
    from ..graph import Graph
    from ..training.result import load_state_dict

    path = Path(path)
    meta_path = path / "metadata.json"
    if not meta_path.is_file():
        raise CheckpointError(f"{path} is not a saved Recommender (no metadata.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: unreadable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
        raise CheckpointError(f"{meta_path} was not written by graphkit.Recommender.save")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in SUPPORTED_FORMAT_VERSIONS:
        raise CheckpointError(
            f"{path}: saved with format_version {version!r}; this graphkit reads format_version "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))} (saved by a newer graphkit? upgrade graphkit)")
    digests = meta.get("sha256", {})
    for name in _FILES:
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{path}: missing file {name}")
        if digests.get(name) != sha256_file(f):
            raise CheckpointError(f"{f}: sha256 does not match metadata.json (corrupted or modified file)")
    try:
        params = dict(meta["params"])
        U, I = int(meta["num_users"]), int(meta["num_items"])
        model_name, model_hp = meta["model"]["name"], dict(meta["model"]["hparams"])
        for reserved in ("num_users", "num_items"):
            model_hp.pop(reserved, None)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: missing or malformed entry ({exc})") from None
    dev = device if device is not None else params.get("device")
    if dev is not None and torch.device(dev).type == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"{path} was saved for device {dev!r}, which is not available here; loading on CPU",
                      stacklevel=2)
        dev = "cpu"
    params["device"] = dev
    try:
        rec = cls(**params)
        model_cls = rec._model_class()
        model = model_cls(U, I, **model_hp)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model ({exc})") from None
    state = load_state_dict(path / "weights.safetensors")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: weights.safetensors does not fit {model_cls.__name__}({U}, {I}, "
                              f"{model_hp}): {exc}") from None
    arrays = load_state_dict(path / "interactions.safetensors")
    emb = load_state_dict(path / "embeddings.safetensors")
    try:
        seen = sp.csr_matrix((arrays["seen_data"].numpy(), arrays["seen_indices"].numpy(),
                              arrays["seen_indptr"].numpy()), shape=(U, I))
        train_mask = arrays["train_mask"].numpy().astype(bool)
        ue, ie = emb["user"], emb["item"]
        if ue.shape[0] != U or ie.shape[0] != I or train_mask.shape[0] != seen.nnz:
            raise ValueError("array sizes do not match the id maps")
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: malformed interactions/embeddings ({exc})") from None
    user_ids = _decode_ids(meta.get("user_ids"), "user")
    item_ids = _decode_ids(meta.get("item_ids"), "item")
    if user_ids.shape[0] != U or item_ids.shape[0] != I:
        raise CheckpointError(f"{path}: the id maps do not match num_users/num_items")
    torch_dev = torch.device(dev or ("cuda" if torch.cuda.is_available() else "cpu"))
    rows = np.repeat(np.arange(U, dtype=np.int64), np.diff(seen.indptr))
    train = binary_csr(rows[train_mask], seen.indices[train_mask], U, I)
    model.to(torch_dev)
    graph = Graph.from_user_item(rows[train_mask], seen.indices[train_mask].astype(np.int64),
                                 num_users=U, num_items=I)
    model.prepare(train, graph.to(torch_dev))
    # prepare() may (re)initialise weights (LightGCN's init="svd"): the saved ones go back on top
    model.load_state_dict({k: v.to(torch_dev) for k, v in state.items()})
    model.eval()
    hist = meta.get("history") or {"columns": [], "rows": []}
    import pandas as pd

    rec._set_learned(model, user_ids, item_ids, seen, train_mask, pd.DataFrame(hist["rows"], columns=hist["columns"]),
                     meta.get("record", {}), ue.to(torch_dev), ie.to(torch_dev))
    return rec
