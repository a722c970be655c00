"""Saving and loading a fitted :class:`~graphkit.recommender.Recommender` (a folder, no pickle).

Layout (``FORMAT_VERSION`` 2):

* ``metadata.json``: format version, model name and hyper-parameters, Recommender parameters,
  ``num_users``/``num_items``, raw-id maps with their types, record, history, package versions,
  sha256 of the three tensor files;
* ``weights.safetensors``: the model's ``state_dict``;
* ``embeddings.safetensors``: final user/item embeddings used for serving;
* ``interactions.safetensors``: ``seen_`` as CSR arrays and the train/validation mask;
* ``checksums.json``: the sha256 of every file above, ``metadata.json`` included (over its
  canonical JSON form: sorted keys, compact separators, ASCII), so no file can change unnoticed.

Format version 3 (written only after ``partial_fit_users`` / ``partial_fit_items``) adds the
metadata fields ``model_users`` / ``model_items`` (the users and items the model was trained with:
the first rows of the id maps) and the tensors ``model_indptr`` / ``model_indices`` (the model's own training matrix, which
``prepare`` needs again) to ``interactions.safetensors``.

Format version 1 (no ``checksums.json``, so ``metadata.json`` itself was unprotected) is still
read, with a ``UserWarning``.

:func:`load` verifies every digest first, then validates every field of ``metadata.json``
against the tensor files and against each other before it allocates anything sized by them;
every problem is a :class:`~graphkit.exceptions.CheckpointError` whose message starts with the
file and names the field (``<folder>/metadata.json: field 'user_ids': ...``).
:meth:`Recommender.save <graphkit.recommender.Recommender.save>` and
:meth:`Recommender.load <graphkit.recommender.Recommender.load>` call :func:`save` and
:func:`load` here.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, List, NoReturn, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import CheckpointError, ConfigError
from ..utils import PathLike, atomic_folder, atomic_write, open_folder_snapshot, package_versions, sha256_file
from ._ids import _decode_ids, _encode_ids, _listing

#: Version of the folder layout written by :meth:`Recommender.save` (3 only for a Recommender with
#: folded-in users, which needs the fields 3 adds; otherwise 2, so older graphkits still read it).
FORMAT_VERSION = 3
#: Versions :meth:`Recommender.load` can read.
SUPPORTED_FORMAT_VERSIONS: Tuple[int, ...] = (1, 2, 3)
_FORMAT_NAME = "graphkit.Recommender"
METADATA_FILE = "metadata.json"
CHECKSUMS_FILE = "checksums.json"
_FILES = ("weights.safetensors", "embeddings.safetensors", "interactions.safetensors")
_META_FIELDS = ("format", "format_version", "model", "params", "num_users", "num_items", "user_ids", "item_ids",
                "record", "history", "versions", "sha256", "model_users", "model_items")
_METADATA_DIGEST = "sha256 of the canonical JSON form of metadata.json (sorted keys, separators ',' and ':', ASCII)"


# ============================================================================== save
def _canonical_digest(meta: Any) -> str:
    """sha256 of ``meta`` as canonical JSON: a re-indented but otherwise equal file has the same digest."""
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _check_replaceable(path: Path) -> None:
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / METADATA_FILE).is_file())):
        raise CheckpointError(f"{path} exists and is not a saved Recommender; refusing to replace it")


def save(rec: Any, path: PathLike) -> Path:
    """:meth:`Recommender.save <graphkit.recommender.Recommender.save>` of ``rec``."""
    from ..training.result import _jsonable, save_state_dict

    rec._check_fitted()
    path = Path(path)
    _check_replaceable(path)
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
    folded = rec._model_train is not None
    version = FORMAT_VERSION if folded else 2
    hist = rec.history_
    history = {"columns": [str(c) for c in hist.columns],
               "rows": [[None if (isinstance(v, float) and not math.isfinite(v)) else _jsonable(v) for v in row]
                        for row in hist.itertuples(index=False, name=None)]}
    meta: Dict[str, Any] = {
        "format": _FORMAT_NAME,
        "format_version": version,
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
    if folded:
        meta["model_users"] = int(rec._model_train.shape[0])
        meta["model_items"] = int(rec._model_train.shape[1])
    try:  # before touching the disk (the id maps are JSON-safe by construction)
        json.dumps({k: v for k, v in meta.items() if k not in ("user_ids", "item_ids")}, allow_nan=False)
    except (TypeError, ValueError) as exc:  # e.g. a non-finite float in the record
        raise CheckpointError(f"cannot save {path}: metadata is not valid JSON ({exc})") from None
    with atomic_folder(path) as tmp:  # inter-process lock on <parent>/.<name>.lock, swap as a whole
        _check_replaceable(path)  # again, under the lock
        save_state_dict(tmp / "weights.safetensors", rec.model_.state_dict())
        save_state_dict(tmp / "embeddings.safetensors", {"user": rec._user_emb, "item": rec._item_emb})
        seen = rec.seen_
        save_state_dict(tmp / "interactions.safetensors", {
            "seen_indptr": torch.from_numpy(seen.indptr.astype(np.int64)),
            "seen_indices": torch.from_numpy(seen.indices.astype(np.int64)),
            "seen_data": torch.from_numpy(seen.data.astype(np.float32)),
            "train_mask": torch.from_numpy(rec._train_mask.astype(np.uint8)),
            **({"model_indptr": torch.from_numpy(rec._model_train.indptr.astype(np.int64)),
                "model_indices": torch.from_numpy(rec._model_train.indices.astype(np.int64))} if folded else {}),
        })
        digests = {name: sha256_file(tmp / name) for name in _FILES}
        meta["sha256"] = digests
        text = json.dumps(meta, indent=1, allow_nan=False) + "\n"
        with atomic_write(tmp / METADATA_FILE, "w") as fh:
            fh.write(text)
        sums = {"format": _FORMAT_NAME, "format_version": version,
                "sha256": {**digests, METADATA_FILE: _canonical_digest(json.loads(text))},
                "metadata_digest": _METADATA_DIGEST}
        with atomic_write(tmp / CHECKSUMS_FILE, "w") as fh:
            json.dump(sums, fh, indent=1, sort_keys=True)
            fh.write("\n")
    return path


# ============================================================================== load helpers
class _Bad(Exception):
    """A failed field check (turned into a CheckpointError naming the file and field)."""


@contextlib.contextmanager
def _field(file: Path, field: str) -> Iterator[None]:
    """Run checks of one field: any failure inside becomes ``CheckpointError("<file>: field '<field>': ...")``."""
    try:
        yield
    except _Bad as exc:
        raise CheckpointError(f"{file}: field {field!r}: {exc}") from None
    except CheckpointError as exc:
        raise CheckpointError(f"{file}: field {field!r}: {exc}") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # untrusted input: a raw traceback of any kind is a bad field
        raise CheckpointError(f"{file}: field {field!r}: {type(exc).__name__}: {exc}") from None


def _int(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"must be an integer, got {value!r}")
    if value < minimum:
        raise _Bad(f"must be >= {minimum}, got {value}")
    return value


def _dict(value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"must be a JSON object, got {type(value).__name__}")
    return value


def _no_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(data: bytes, file: Path) -> Dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                         parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{file}: unreadable JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{file}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _open_snapshot(folder: Path, names: Tuple[str, ...]) -> Dict[str, Optional[BinaryIO]]:
    """Open ``names`` from one and the same save (:func:`graphkit.utils.open_folder_snapshot`)."""
    return open_folder_snapshot(folder, names, f"saved Recommender (no {METADATA_FILE})")


def _sha256_handle(fh: BinaryIO) -> str:
    h = hashlib.sha256()
    fh.seek(0)
    for block in iter(lambda: fh.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def _read_tensors(fh: BinaryIO, file: Path) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load as st_load

    fh.seek(0)
    data = fh.read()
    try:
        return st_load(data)
    except Exception as exc:
        raise CheckpointError(f"{file}: not a readable safetensors file ({exc})") from None


def _tensor(tensors: Dict[str, torch.Tensor], name: str, ndim: int, kind: str) -> torch.Tensor:
    if name not in tensors:
        raise _Bad(f"missing (the file holds {sorted(tensors)})")
    t = tensors[name]
    if t.dim() != ndim:
        raise _Bad(f"must be {ndim}-D, got shape {tuple(t.shape)}")
    if kind == "float" and not t.is_floating_point():
        raise _Bad(f"must hold floats, got {t.dtype}")
    if kind not in ("float", "any") and t.dtype != getattr(torch, kind):
        raise _Bad(f"must be {kind}, got {t.dtype}")
    return t


def _finite(t: torch.Tensor) -> None:
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            first = tuple(int(x) for x in torch.nonzero(bad)[0].tolist())
            raise _Bad(f"{int(bad.sum())} non-finite value(s) (NaN/Inf), first at index {first}: "
                       f"{float(t[first])}")


def _check_id_dtype(dtype: Any, values: List[Any]) -> None:
    """A typed id map's dtype: a string; a fixed-width unicode one no wider than its longest id
    (``<U1000000000`` would allocate gigabytes for a few ids)."""
    if not isinstance(dtype, str):
        raise _Bad(f"'dtype' must be a string, got {dtype!r}")
    if dtype == "object":
        return
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise _Bad(f"'dtype' {dtype!r} is not a numpy dtype ({exc})") from None
    if dt.kind == "U":
        longest = max((len(v) for v in values if isinstance(v, str)), default=0)
        if dt.itemsize // 4 > max(longest, 1):
            raise _Bad(f"'dtype' {dtype!r} is wider than its longest id ({longest} characters)")


def _usable(dev: torch.device) -> bool:
    if dev.type == "cpu":
        return True
    if dev.type == "meta":
        return False
    try:
        torch.zeros(1, device=dev)
    except Exception:
        return False
    return True


def _build(model_cls: Any, U: int, I: int, hp: Dict[str, Any]) -> Any:
    """``model_cls(U, I, **hp)``, first on the meta device (no memory), so that absurd sizes are
    caught by the shape checks before anything is allocated."""
    try:
        with torch.device("meta"):
            return model_cls(U, I, **hp)
    except (ConfigError, TypeError, ValueError):
        raise
    except Exception:  # a constructor that cannot run on the meta device: build it for real
        return model_cls(U, I, **hp)


# ============================================================================== load
def load(cls: Any, path: PathLike, device: Optional[str] = None) -> Any:
    """:meth:`Recommender.load <graphkit.recommender.Recommender.load>` as ``cls``."""
    import pandas as pd

    from ..datasets.recommendation import binary_csr
    from ..graph import Graph
    from ..models import RecommenderModel, available_models, get_model

    folder = Path(path)
    meta_path = folder / METADATA_FILE
    if device is not None:
        try:
            torch.device(device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"device must be a torch device string such as 'cpu' or 'cuda', got {device!r}") \
                from None
    handles = _open_snapshot(folder, (METADATA_FILE, CHECKSUMS_FILE) + _FILES)
    try:
        # ---------------------------------------------------------------- format, then digests
        if handles[METADATA_FILE] is None:
            raise CheckpointError(f"{folder} is not a saved Recommender (no {METADATA_FILE})")
        meta = _parse_json(handles[METADATA_FILE].read(), meta_path)
        if meta.get("format") != _FORMAT_NAME:
            raise CheckpointError(f"{meta_path}: field 'format': {meta.get('format')!r}; "
                                  "not written by graphkit.Recommender.save")
        version = meta.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version not in SUPPORTED_FORMAT_VERSIONS:
            raise CheckpointError(
                f"{meta_path}: field 'format_version': saved with format_version {version!r}; this graphkit reads "
                f"format_version {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))} (saved by a newer graphkit? "
                "upgrade graphkit)")
        sums_path = folder / CHECKSUMS_FILE
        manifest: Optional[Dict[str, Any]] = None
        if handles[CHECKSUMS_FILE] is not None:  # verified whatever the version says (no downgrade by an edit)
            sums = _parse_json(handles[CHECKSUMS_FILE].read(), sums_path)
            with _field(sums_path, "sha256"):
                if sums.get("format") != _FORMAT_NAME:
                    raise _Bad(f"not a {_FORMAT_NAME} manifest (format {sums.get('format')!r})")
                manifest = _dict(sums.get("sha256"))
                for name in (METADATA_FILE,) + _FILES:
                    if not isinstance(manifest.get(name), str):
                        raise _Bad(f"no digest for {name}")
        elif version >= 2:
            raise CheckpointError(f"{sums_path}: missing (format_version {version} folders carry one)")
        else:
            warnings.warn(f"{folder}: saved in format_version 1, without {CHECKSUMS_FILE}: {METADATA_FILE} is not "
                          "protected by any digest (save it again to protect it)", UserWarning, stacklevel=3)
        for name in _FILES:
            if handles[name] is None:
                raise CheckpointError(f"{folder / name}: missing")
        with _field(meta_path, "sha256"):
            in_meta = _dict(meta.get("sha256"))
        actual = {name: _sha256_handle(handles[name]) for name in _FILES}
        try:
            canonical = _canonical_digest(meta)
        except ValueError as exc:
            raise CheckpointError(f"{meta_path}: not valid JSON ({exc})") from None
        changed = []
        for name in _FILES:
            if manifest is not None and manifest[name] != actual[name]:
                changed.append(f"{folder / name}: sha256 differs from {CHECKSUMS_FILE}")
            elif in_meta.get(name) != actual[name]:
                changed.append(f"{folder / name}: sha256 differs from {METADATA_FILE} field 'sha256'")
        if manifest is not None and manifest[METADATA_FILE] != canonical:
            changed.append(f"{meta_path}: sha256 differs from {CHECKSUMS_FILE}")
        if changed:
            raise CheckpointError("; ".join(changed) + " (modified or corrupted since the save)")

        # ---------------------------------------------------------------- metadata fields
        unknown = sorted(set(meta) - set(_META_FIELDS))
        if unknown:
            raise CheckpointError(f"{meta_path}: field {unknown[0]!r}: unknown field (format_version {version} has "
                                  f"{', '.join(_META_FIELDS)})")
        for name in ("num_users", "num_items"):
            with _field(meta_path, name):
                _int(meta.get(name), name, minimum=1)
        U, I = int(meta["num_users"]), int(meta["num_items"])
        M, N = U, I  # users and items of the model itself (fewer after a fold-in)
        if ("model_users" in meta) != ("model_items" in meta):
            missing = "model_items" if "model_users" in meta else "model_users"
            raise CheckpointError(f"{meta_path}: field {missing!r}: missing (model_users and model_items go together)")
        for name, total, size_field in (("model_users", U, "num_users"), ("model_items", I, "num_items")):
            if name in meta:
                with _field(meta_path, name):
                    if version < 3:
                        raise _Bad(f"unknown field in format_version {version} (it came with format_version 3)")
                    _int(meta[name], name, minimum=1)
                    if int(meta[name]) > total:
                        raise _Bad(f"{int(meta[name])} exceeds {size_field} ({total})")
        if "model_users" in meta:
            M, N = int(meta["model_users"]), int(meta["model_items"])
        raw_ids: Dict[str, np.ndarray] = {}
        for key, count, what, size_field in (("user_ids", U, "user", "num_users"),
                                             ("item_ids", I, "item", "num_items")):
            with _field(meta_path, key):
                obj = _dict(meta.get(key))
                values = obj.get("values")
                if not isinstance(values, list):
                    raise _Bad(f"'values' must be a list, got {type(values).__name__}")
                if len(values) != count:  # before decoding anything
                    raise _Bad(f"{len(values)} ids, but {size_field} is {count}")
                _check_id_dtype(obj.get("dtype"), values)
                ids = _decode_ids(obj, what)
                if ids.ndim != 1 or ids.shape[0] != count:
                    raise _Bad(f"decodes to shape {ids.shape}, expected ({count},)")
                index = pd.Index(ids, tupleize_cols=False, dtype=object if ids.dtype == object else None)
                if not index.is_unique:
                    dups = list(dict.fromkeys(index[index.duplicated()].tolist()))
                    raise _Bad(f"{len(dups)} duplicate id(s): {_listing(dups)}")
                raw_ids[what] = ids

        with _field(meta_path, "model"):
            model_meta = _dict(meta.get("model"))
            extra = sorted(set(model_meta) - {"name", "class", "hparams"})
            if extra:
                raise _Bad(f"unknown entries {extra}")
        with _field(meta_path, "model.name"):
            model_name = model_meta.get("name")
            if not isinstance(model_name, str) or model_name not in available_models():
                raise _Bad(f"{model_name!r} is not a registered model name; registered: "
                           f"{', '.join(available_models())} (graphkit.models.register_model(name, cls))")
            model_cls = get_model(model_name)
            if not (isinstance(model_cls, type) and issubclass(model_cls, RecommenderModel)):
                raise _Bad(f"{model_name!r} ({model_cls.__name__}) is not a recommendation model")
        with _field(meta_path, "model.class"):
            if model_meta.get("class", model_cls.__name__) != model_cls.__name__:
                raise _Bad(f"{model_meta.get('class')!r}, but {model_name!r} is registered as {model_cls.__name__}")
        with _field(meta_path, "model.hparams"):
            hp = dict(_dict(model_meta.get("hparams")))
            for reserved, value in (("num_users", M), ("num_items", N)):
                if reserved in hp and hp.pop(reserved) != value:
                    raise _Bad(f"{reserved} differs from the field {reserved!r} ({value})")
            sig = inspect.signature(model_cls.__init__).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in sig.values()):
                unknown_hp = sorted(k for k in hp if k not in sig or k == "self")
                if unknown_hp:
                    raise _Bad(f"unknown hyper-parameter(s) {', '.join(map(repr, unknown_hp))}: "
                               f"{model_cls.__name__} takes {', '.join(n for n in sig if n != 'self')}")

        with _field(meta_path, "params"):
            params = dict(_dict(meta.get("params")))
            if params.get("model") != model_name:
                raise _Bad(f"model {params.get('model')!r} differs from field 'model.name' ({model_name!r})")
            for key, value in params.items():  # the Recommender's arguments that are model arguments
                if key in hp and hp[key] != value:
                    raise _Bad(f"{key}={value!r} differs from field 'model.hparams' ({key}={hp[key]!r})")
            saved_dev = params.get("device")
            if saved_dev is not None:  # a device name must parse; whether it is usable here is decided below
                try:
                    torch.device(saved_dev)
                except (RuntimeError, TypeError, ValueError):
                    raise _Bad(f"device {saved_dev!r} is not a device name") from None
            try:  # the constructor's own validation (columns, seed, hyper-parameter names...)
                cls(**{**params, "device": None})
            except (ConfigError, TypeError, ValueError) as exc:
                raise _Bad(str(exc)) from None
        with _field(meta_path, "record"):
            record = _dict(meta.get("record"))
        with _field(meta_path, "versions"):
            if "versions" in meta:
                _dict(meta["versions"])
        with _field(meta_path, "history"):
            hist = _dict(meta.get("history", {"columns": [], "rows": []}))
            columns, hrows = hist.get("columns"), hist.get("rows")
            if set(hist) != {"columns", "rows"}:
                raise _Bad(f"must have exactly the entries 'columns' and 'rows', got {sorted(hist)}")
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise _Bad("'columns' must be a list of strings")
            if len(set(columns)) != len(columns):
                raise _Bad(f"repeated column names in {columns}")
            if not isinstance(hrows, list):
                raise _Bad("'rows' must be a list")
            for j, row in enumerate(hrows):
                if not isinstance(row, list) or len(row) != len(columns):
                    raise _Bad(f"row {j} must be a list of {len(columns)} values, got {row!r}")
                if any(isinstance(v, (list, dict)) for v in row):
                    raise _Bad(f"row {j} holds a list/object; only numbers, strings, booleans and null")

        # ---------------------------------------------------------------- device
        dev = device if device is not None else params.get("device")
        if dev is not None and not _usable(torch.device(dev)):
            warnings.warn(f"{folder} was saved for device {dev!r}, which is not available here; loading on CPU",
                          UserWarning, stacklevel=3)
            dev = "cpu"
        params["device"] = dev
        rec = cls(**params)

        # ---------------------------------------------------------------- embeddings
        emb_path = folder / "embeddings.safetensors"
        emb = _read_tensors(handles["embeddings.safetensors"], emb_path)
        with _field(emb_path, "(tensor names)"):
            if set(emb) != {"user", "item"}:
                raise _Bad(f"expected the tensors 'user' and 'item', got {sorted(emb)}")
        dims = {}
        for name, rows_expected, size_field in (("user", U, "num_users"), ("item", I, "num_items")):
            with _field(emb_path, name):
                t = _tensor(emb, name, 2, "float")
                if t.shape[0] != rows_expected:
                    raise _Bad(f"{t.shape[0]} rows, but {METADATA_FILE} field {size_field!r} is {rows_expected}")
                if t.shape[1] < 1:
                    raise _Bad("has width 0")
                _finite(t)
                dims[name] = int(t.shape[1])
        with _field(emb_path, "item"):
            if dims["user"] != dims["item"]:
                raise _Bad(f"width {dims['item']} differs from the user embeddings' width {dims['user']}")
        ue, ie = emb["user"], emb["item"]

        # ---------------------------------------------------------------- interactions
        int_path = folder / "interactions.safetensors"
        arrays = _read_tensors(handles["interactions.safetensors"], int_path)
        with _field(int_path, "(tensor names)"):
            expected_names = {"seen_indptr", "seen_indices", "seen_data", "train_mask"}
            if "model_users" in meta:
                expected_names |= {"model_indptr", "model_indices"}
            if set(arrays) != expected_names:
                raise _Bad(f"expected the tensors {sorted(expected_names)}, got {sorted(arrays)}")
        with _field(int_path, "seen_indptr"):
            indptr = _tensor(arrays, "seen_indptr", 1, "int64").numpy()
            if indptr.shape[0] != U + 1:
                raise _Bad(f"length {indptr.shape[0]}, expected num_users + 1 = {U + 1}")
            if indptr[0] != 0 or (np.diff(indptr) < 0).any():
                raise _Bad("must start at 0 and never decrease")
        nnz = int(indptr[-1])
        with _field(int_path, "seen_indices"):
            indices = _tensor(arrays, "seen_indices", 1, "int64").numpy()
            if indices.shape[0] != nnz:
                raise _Bad(f"length {indices.shape[0]}, but seen_indptr ends at {nnz}")
            if nnz and (indices.min() < 0 or indices.max() >= I):
                bad = int(np.flatnonzero((indices < 0) | (indices >= I))[0])
                raise _Bad(f"item index {int(indices[bad])} at position {bad} is outside [0, num_items = {I})")
            rows = np.repeat(np.arange(U, dtype=np.int64), np.diff(indptr))
            keys = rows * np.int64(I) + indices
            if np.unique(keys).shape[0] != nnz:
                raise _Bad("a (user, item) pair is stored twice")
        with _field(int_path, "seen_data"):
            data_t = _tensor(arrays, "seen_data", 1, "float32")
            if data_t.shape[0] != nnz:
                raise _Bad(f"length {data_t.shape[0]}, but seen_indptr ends at {nnz}")
            _finite(data_t)
            if nnz and bool((data_t < 0).any()):
                raise _Bad("negative interaction weight(s)")
        with _field(int_path, "train_mask"):
            mask_t = _tensor(arrays, "train_mask", 1, "uint8")
            if mask_t.shape[0] != nnz:
                raise _Bad(f"length {mask_t.shape[0]}, but there are {nnz} interactions")
            if bool((mask_t > 1).any()):
                raise _Bad("values must be 0 or 1")
        seen = sp.csr_matrix((data_t.numpy(), indices, indptr), shape=(U, I))
        train_mask = mask_t.numpy().astype(bool)
        model_train = None
        if "model_users" in meta:
            with _field(int_path, "model_indptr"):
                m_ptr = _tensor(arrays, "model_indptr", 1, "int64").numpy()
                if m_ptr.shape[0] != M + 1:
                    raise _Bad(f"length {m_ptr.shape[0]}, expected model_users + 1 = {M + 1}")
                if m_ptr[0] != 0 or (np.diff(m_ptr) < 0).any():
                    raise _Bad("must start at 0 and never decrease")
            with _field(int_path, "model_indices"):
                m_idx = _tensor(arrays, "model_indices", 1, "int64").numpy()
                if m_idx.shape[0] != int(m_ptr[-1]):
                    raise _Bad(f"length {m_idx.shape[0]}, but model_indptr ends at {int(m_ptr[-1])}")
                if m_idx.size and (m_idx.min() < 0 or m_idx.max() >= N):
                    raise _Bad(f"an item index is outside [0, model_items = {N})")
                m_rows = np.repeat(np.arange(M, dtype=np.int64), np.diff(m_ptr))
                if np.unique(m_rows * np.int64(N) + m_idx).shape[0] != m_idx.shape[0]:
                    raise _Bad("a (user, item) pair is stored twice")
            model_train = binary_csr(m_rows, m_idx, M, N)

        # ---------------------------------------------------------------- model and weights
        w_path = folder / "weights.safetensors"
        state = _read_tensors(handles["weights.safetensors"], w_path)
        with _field(meta_path, "model.hparams"):
            try:
                skeleton = _build(model_cls, M, N, hp)
            except Exception as exc:
                raise _Bad(f"{model_cls.__name__}({U}, {I}, ...) rejects them: {exc}") from None
        expected = skeleton.state_dict()
        placeholders = {n for n, b in skeleton.named_buffers() if b.numel() == 0}
        with _field(w_path, "(tensor names)"):
            missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
            if missing or extra:
                raise _Bad(f"do not fit {model_cls.__name__} built from {METADATA_FILE} field 'model.hparams': "
                           + "; ".join(([f"missing {_listing(missing)}"] if missing else [])
                                       + ([f"unexpected {_listing(extra)}"] if extra else [])))
        for name, want in expected.items():
            with _field(w_path, name):
                got = state[name]
                if got.dtype != want.dtype:
                    raise _Bad(f"dtype {got.dtype}, {model_cls.__name__} expects {want.dtype}")
                if tuple(got.shape) != tuple(want.shape) and name not in placeholders:
                    raise _Bad(f"shape {tuple(got.shape)}, {model_cls.__name__}({U}, {I}, {hp}) expects "
                               f"{tuple(want.shape)}")
                _finite(got)
        del skeleton, expected
        with _field(meta_path, "model.hparams"):
            model = model_cls(M, N, **hp)
        for name in placeholders:  # buffers sized by prepare(): take the saved ones
            owner, _, leaf = name.rpartition(".")
            module = model.get_submodule(owner) if owner else model
            module._buffers[leaf] = state[name].clone()
        with _field(w_path, "(state_dict)"):
            model.load_state_dict(state)

        # ---------------------------------------------------------------- assemble
        torch_dev = torch.device(dev or ("cuda" if torch.cuda.is_available() else "cpu"))
        if model_train is None:
            train = binary_csr(rows[train_mask], indices[train_mask], U, I)
        else:
            train = model_train
        model.to(torch_dev)
        t_rows, t_cols = train.nonzero()
        graph = Graph.from_user_item(t_rows.astype(np.int64), t_cols.astype(np.int64),
                                     num_users=train.shape[0], num_items=train.shape[1])
        model.prepare(train, graph.to(torch_dev))
        # prepare() may (re)initialise weights (LightGCN's init="svd"): the saved ones go back on top
        model.load_state_dict({k: v.to(torch_dev) for k, v in state.items()})
        model.eval()
        with _field(emb_path, "item"):
            with torch.no_grad():
                mu, mi = model.embeddings()
            shapes = (tuple(mu.shape), tuple(mi.shape))
            del mu, mi
            if shapes != ((M, ue.shape[1]), (N, ie.shape[1])):
                raise _Bad(f"the saved embeddings have shapes {tuple(ue.shape)} (user) and {tuple(ie.shape)} "
                           f"(item); the model's are {shapes[0]} and {shapes[1]}")
        history = pd.DataFrame(hist["rows"], columns=hist["columns"])
    finally:
        for fh in handles.values():
            if fh is not None:
                fh.close()
    rec._set_learned(model, raw_ids["user"], raw_ids["item"], seen, train_mask, history, record,
                     model_train=model_train, ue=ue.to(torch_dev), ie=ie.to(torch_dev))
    return rec
