"""What a training run returns: the model, its test metrics, its history and its record.

A saved result is a folder (:meth:`FitResult.save`, :meth:`FitResult.load`):

* ``model.safetensors``: the model's ``state_dict`` (safetensors: no pickle, loading runs no code);
* ``history.csv``: one row per epoch;
* ``record.json``: the run's record (``model`` class name, ``task``, ``hparams``, ``train``,
  ``seed``, ``dataset``, ``fingerprint``, versions, ...) plus ``metrics`` and ``format_version``;
* ``checksums.json``: the sha256 of the three files above, verified on load;
* anything else that was already in the folder (e.g. ``checkpoints/`` written by training),
  carried over untouched by every save.
"""
from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Type

import torch

from ..exceptions import CheckpointError
from ..utils import PathLike, atomic_folder, atomic_write, open_folder_snapshot, sha256_file

#: Version of the folder layout written by :meth:`FitResult.save` (1: no ``checksums.json``).
FORMAT_VERSION = 2
FORMAT_NAME = "graphkit.FitResult"
MODEL_FILE = "model.safetensors"
HISTORY_FILE = "history.csv"
RECORD_FILE = "record.json"
CHECKSUMS_FILE = "checksums.json"
RESULT_FILES = (MODEL_FILE, HISTORY_FILE, RECORD_FILE)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (temp file, then rename).

    Args:
        path: the file to write.
        obj: the object (tensors, numpy scalars and other values are made JSON-safe).
    """
    with atomic_write(path, "w") as fh:
        json.dump(_jsonable(obj), fh, indent=2, sort_keys=True)
        fh.write("\n")


def save_state_dict(path: PathLike, state: Dict[str, torch.Tensor]) -> None:
    """Save tensors atomically as safetensors (no pickle, so loading runs no code).

    Args:
        path: the file to write.
        state: name -> tensor (moved to the CPU, made contiguous).
    """
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_write(path, "wb") as fh:
        fh.write(save(tensors))


def load_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """Load tensors saved by :func:`save_state_dict`.

    Args:
        path: the file to read.
    """
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def resolve_model_class(name: Any, where: str = "record.json") -> Type:
    """The registered model class whose class name (``"LightGCN"``) or registry name
    (``"lightgcn"``) is ``name``.

    Only classes in the :mod:`graphkit.models` registry are returned, so a record can never
    make graphkit import code by name.

    Args:
        name: ``record["model"]``.
        where: the file the name comes from (for the error message).

    Raises:
        CheckpointError: no registered class has that name.
    """
    from ..models import available_models, get_model

    classes = {get_model(n) for n in available_models()}
    by_class = [c for c in classes if c.__name__ == name]
    if len(by_class) == 1:
        return by_class[0]
    if isinstance(name, str) and name.lower() in available_models():
        return get_model(name)
    known = ", ".join(sorted(c.__name__ for c in classes))
    raise CheckpointError(f"{where}: field 'model': unknown model class {name!r}; registered: {known} "
                          "(graphkit.models.register_model(name, cls) registers a custom one)")


def _read_files(folder: Path, names: List[str]) -> Dict[str, Optional[bytes]]:
    """The bytes of ``names`` in ``folder`` (``None`` for a missing file), all from one and the
    same save (:func:`graphkit.utils.open_folder_snapshot`)."""
    handles = open_folder_snapshot(folder, names, "saved FitResult")
    try:
        return {n: (fh.read() if fh is not None else None) for n, fh in handles.items()}
    finally:
        for fh in handles.values():
            if fh is not None:
                fh.close()


@dataclass
class FitResult:
    """The outcome of :func:`graphkit.fit`.

    Attributes:
        model: the trained model, with the weights selected on the validation split.
        metrics: test metrics of that model (``{"recall@20": ..., ...}``).
        history: a pandas DataFrame, one row per epoch (loss, seconds, validation metrics).
        record: everything needed to cite the run: dataset, split fingerprint, seed,
            hyper-parameters, package versions, device, best epoch, wall time.
        dataset: the dataset object the run trained on, when the training engine sets it
            (so :meth:`graphkit.Recommender.from_result` can serve without reloading the
            data).  Never saved; ``None`` after :meth:`load`.  Not part of ``repr`` or ``==``.
    """

    model: torch.nn.Module
    metrics: Dict[str, float]
    history: Any
    record: Dict[str, Any] = field(default_factory=dict)
    dataset: Any = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in self.metrics.items())
        return f"FitResult({type(self.model).__name__}, {shown})"

    def save(self, path: PathLike) -> Path:
        """Save to a folder, atomically as a whole.

        Layout: ``model.safetensors`` (the ``state_dict``), ``history.csv``,
        ``record.json`` (the record plus ``metrics`` and ``format_version``) and
        ``checksums.json`` (their sha256, verified by :meth:`load`).

        The folder is built under a temporary name beside ``path`` and renamed into place
        (:func:`graphkit.utils.atomic_folder`): a reader sees the previous complete folder
        or the new complete one, never the weights of one run beside the record of
        another, even with several processes saving to ``path`` at once (they take turns
        on the lock ``<parent>/.<name>.lock``).  An exception or a crash during the save
        leaves the previous folder as it was.  Entries of an existing folder that the save
        does not write itself (e.g. ``checkpoints/`` from ``graphkit fit --out``) are
        moved into the new folder.  Files get ``0o666 & ~umask``, the folder ``0o777 & ~umask``.

        Args:
            path: the folder (created if needed; replaced if it exists).

        Returns:
            ``Path(path)``.

        Raises:
            ConfigError: ``path`` is a file, a symbolic link or the current directory, or a
                live training run holds a checkpoint folder inside it.
        """
        body = {**_jsonable(self.record), "format_version": FORMAT_VERSION, "metrics": _jsonable(self.metrics)}
        with atomic_folder(path) as tmp:
            save_state_dict(tmp / MODEL_FILE, self.model.state_dict())
            with atomic_write(tmp / HISTORY_FILE, "w") as fh:
                self.history.to_csv(fh, index=False)
            write_json(tmp / RECORD_FILE, body)
            write_json(tmp / CHECKSUMS_FILE, {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                                              "sha256": {n: sha256_file(tmp / n) for n in RESULT_FILES}})
        return Path(path)

    @classmethod
    def load(cls, path: PathLike, device: Any = None) -> "FitResult":
        """Load a folder written by :meth:`save`: model (with its weights), metrics, history
        (a pandas DataFrame) and record.

        The model class is looked up by ``record["model"]`` in the :mod:`graphkit.models`
        registry and built from ``record["hparams"]`` (constructor arguments missing there
        take their defaults); the weights are read with safetensors only.  The files are
        checked against ``checksums.json`` first.  ``dataset`` is ``None``: a loaded model
        has no data attached.  Recommendation models such as LightGCN need the training
        graph before they can score (``model.prepare(train, graph)``): to serve a loaded
        result use :meth:`graphkit.Recommender.from_result`, which reloads the dataset by
        name and checks its split fingerprint against the record.

        Folders of ``format_version`` 1 (no ``checksums.json``) load with a warning.

        Args:
            path: the folder.
            device: where to put the model (default: the CPU).

        Raises:
            CheckpointError: naming the file and the field: a missing folder or file, a
                file whose sha256 differs from ``checksums.json``, an unknown
                ``format_version``, an unregistered ``model``, ``hparams`` that do not
                build it, weights whose names or shapes do not fit it, an unreadable
                history or malformed ``metrics``.
        """
        import pandas as pd

        folder = Path(path)
        files = _read_files(folder, [RECORD_FILE, CHECKSUMS_FILE, MODEL_FILE, HISTORY_FILE])
        rec_path = folder / RECORD_FILE
        for name in (RECORD_FILE, MODEL_FILE, HISTORY_FILE):
            if files[name] is None:
                raise CheckpointError(f"{folder / name}: missing (not a FitResult.save folder, or an incomplete one)")
        record = _parse_json(files[RECORD_FILE], rec_path)
        version = record.pop("format_version", None)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
            raise CheckpointError(f"{rec_path}: field 'format_version': {version!r}; this graphkit reads "
                                  f"1 to {FORMAT_VERSION}")
        if files[CHECKSUMS_FILE] is None:
            if version >= 2:
                raise CheckpointError(f"{folder / CHECKSUMS_FILE}: missing")
            warnings.warn(f"{folder}: saved by an older graphkit without {CHECKSUMS_FILE}; files not verified",
                          stacklevel=2)
        else:
            _verify_checksums(folder, files)
        metrics = record.pop("metrics", None)
        if not isinstance(metrics, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()):
            raise CheckpointError(f"{rec_path}: field 'metrics' must map metric names to numbers, got {metrics!r}")
        model = _build_model(record, rec_path)
        _load_weights(model, files[MODEL_FILE], folder / MODEL_FILE, rec_path)
        model.to(torch.device(device) if device is not None else torch.device("cpu"))
        model.eval()
        try:
            history = pd.read_csv(io.BytesIO(files[HISTORY_FILE]))
        except Exception as exc:
            raise CheckpointError(f"{folder / HISTORY_FILE}: not a readable CSV table ({exc})") from None
        return cls(model, {str(k): v for k, v in metrics.items()}, history, record)


def _parse_json(data: bytes, path: Path) -> Dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _verify_checksums(folder: Path, files: Dict[str, Optional[bytes]]) -> None:
    import hashlib

    where = folder / CHECKSUMS_FILE
    sums = _parse_json(files[CHECKSUMS_FILE], where)
    digests = sums.get("sha256")
    if sums.get("format") != FORMAT_NAME or not isinstance(digests, dict):
        raise CheckpointError(f"{where}: field 'sha256' missing or not a {FORMAT_NAME} manifest")
    for name in RESULT_FILES:
        expected = digests.get(name)
        if not isinstance(expected, str):
            raise CheckpointError(f"{where}: field 'sha256': no digest for {name}")
        got = hashlib.sha256(files[name]).hexdigest()
        if got != expected:
            raise CheckpointError(f"{folder / name}: sha256 {got[:16]}... differs from {CHECKSUMS_FILE} "
                                  f"({expected[:16]}...): the file was modified or corrupted since the save")


def _build_model(record: Dict[str, Any], rec_path: Path) -> torch.nn.Module:
    import inspect

    if "model" not in record:
        raise CheckpointError(f"{rec_path}: field 'model' missing")
    model_cls = resolve_model_class(record["model"], str(rec_path))
    task = record.get("task")
    cls_task = getattr(model_cls, "task", "recommendation")
    if task is not None and task != cls_task:
        raise CheckpointError(f"{rec_path}: field 'task': {task!r}, but {model_cls.__name__} is a {cls_task!r} model")
    hparams = record.get("hparams")
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{rec_path}: field 'hparams' must be an object of constructor arguments, "
                              f"got {hparams!r}")
    params = inspect.signature(model_cls.__init__).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = sorted(k for k in hparams if k not in params and not accepts_any)
    if unknown:
        raise CheckpointError(f"{rec_path}: field 'hparams': {model_cls.__name__} takes no argument "
                              f"{', '.join(map(repr, unknown))}")
    required = [n for n, p in params.items() if n != "self" and p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    missing = [n for n in required if n not in hparams]
    if missing:
        raise CheckpointError(f"{rec_path}: field 'hparams': missing {', '.join(map(repr, missing))} "
                              f"(required by {model_cls.__name__})")
    try:
        return model_cls(**hparams)
    except Exception as exc:
        raise CheckpointError(f"{rec_path}: field 'hparams' does not build a {model_cls.__name__}: {exc}") from None


def _load_weights(model: torch.nn.Module, data: bytes, path: Path, rec_path: Path) -> None:
    from safetensors.torch import load as st_load

    try:
        state = st_load(data)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = ([f"missing tensors {missing[:5]}"] if missing else []) + \
                ([f"unexpected tensors {unexpected[:5]}"] if unexpected else [])
        raise CheckpointError(f"{path}: the weights do not fit the {type(model).__name__} that {rec_path.name} "
                              f"describes: {'; '.join(parts)}")
    buffers = dict(model.named_buffers())
    for name, tensor in state.items():
        want = expected[name]
        if tuple(tensor.shape) == tuple(want.shape):
            continue
        if name in buffers and want.numel() == 0:  # a placeholder buffer sized by prepare(): take the saved one
            owner, _, leaf = name.rpartition(".")
            module = model.get_submodule(owner) if owner else model
            module._buffers[leaf] = tensor.to(want.dtype).clone()
            continue
        raise CheckpointError(f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, the model built from "
                              f"field 'hparams' of {rec_path.name} expects {tuple(want.shape)}")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # e.g. a dtype that cannot be copied
        raise CheckpointError(f"{path}: the weights do not load into {type(model).__name__}: {exc}") from None


__all__ = ["FitResult", "write_json", "save_state_dict", "load_state_dict", "resolve_model_class",
           "FORMAT_VERSION", "RESULT_FILES", "CHECKSUMS_FILE"]
