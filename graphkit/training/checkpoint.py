"""Crash-safe training checkpoints: safetensors + JSON, never pickle.

A checkpoint is **one file**, ``checkpoint.safetensors``.  Its tensors are the model
weights (``model/<name>``), the best weights so far (``best/<name>``), the optimizer's
tensor state (``optimizer/<param>/<name>``: Adam's moments and step counters, SGD's
momentum buffers) and the random-number-generator states (``rng/...``).  Everything else
(epoch and batch position, best score, patience counter, history so far, training
configuration, model hyper-parameters, dataset fingerprint, the optimizer's scalar
state and hyper-parameters) is JSON stored in the safetensors header metadata under the
key ``"graphkit"``, together with a sha256 over that JSON and every tensor's bytes.

Properties:

* **atomic**: the file is written to a temporary name beside the target, fsynced and
  renamed over it (:func:`graphkit.utils.atomic_write`), so a crash or ``kill -9`` at
  any instant leaves either the previous checkpoint or the new one, never a mix;
* **no code execution on load**: safetensors holds raw tensor bytes and a JSON header;
  nothing is unpickled, so a crafted file can at worst fail to load
  (:class:`~graphkit.exceptions.CheckpointError`);
* **verified**: a file whose metadata or tensors do not match the recorded sha256 (bit
  rot, a file truncated by a full disk on a filesystem that lied about fsync, an edit)
  raises :class:`CheckpointError` instead of resuming from garbage.  (The sha256 detects
  corruption, not forgery: whoever can write the file can recompute it.  The trainer
  therefore also checks every value it restores.)

The trainer (:class:`graphkit.training.RecommendationTrainer`) writes and reads these
files; the functions here are public so that tools can inspect a checkpoint
(:func:`read_checkpoint_meta`) without loading its tensors.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..exceptions import CheckpointError, ConfigError
from ..utils import PathLike, atomic_write

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_meta",
    "capture_rng_state",
    "restore_rng_state",
    "compare_fields",
    "checkpoint_dir_lock",
    "remove_stale_temporaries",
]

#: File name of the resumable training checkpoint inside ``checkpoint_dir``.
CHECKPOINT_FILE = "checkpoint.safetensors"
#: ``format`` entry of the JSON metadata.
CHECKPOINT_FORMAT = "graphkit.checkpoint"
#: Version of the checkpoint layout written by this graphkit.
CHECKPOINT_VERSION = 1
_META_KEY = "graphkit"


@dataclass
class Checkpoint:
    """The content of a checkpoint file.

    Attributes:
        path: the file it was read from.
        meta: the JSON metadata (position, counters, history, config, fingerprint, ...).
        model_state: the model's ``state_dict`` (CPU tensors).
        optimizer_state: an optimizer ``state_dict`` ready for ``load_state_dict``
            (``None`` when none was saved).
        best_state: the best weights so far (``None`` when there were none).
        rng: RNG states as captured by :func:`capture_rng_state`.
    """

    path: Path
    meta: Dict[str, Any]
    model_state: Dict[str, torch.Tensor]
    optimizer_state: Optional[Dict[str, Any]]
    best_state: Optional[Dict[str, torch.Tensor]]
    rng: Dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- tensors
def _tensor_bytes(t: torch.Tensor) -> memoryview:
    flat = t.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def _digest(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of ``meta`` and (name, dtype, shape, bytes) of every
    tensor in sorted name order."""
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()


def _cpu_unshared(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """CPU, contiguous, detached tensors; copies where two entries share storage
    (safetensors refuses shared storage, e.g. tied weights)."""
    out: Dict[str, torch.Tensor] = {}
    seen: set = set()
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"cannot checkpoint {name!r}: not a tensor ({type(t).__name__})")
        c = t.detach().to("cpu").contiguous()
        if c.numel():
            ptr = c.untyped_storage().data_ptr()
            if ptr in seen:
                c = c.clone()
                ptr = c.untyped_storage().data_ptr()
            seen.add(ptr)
        out[name] = c
    return out


# ----------------------------------------------------------------------------- optimizer
def _flatten_optimizer(sd: Mapping[str, Any]) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    tensors: Dict[str, torch.Tensor] = {}
    state_json: Dict[str, Dict[str, Any]] = {}
    for pid, st in sd.get("state", {}).items():
        entry: Dict[str, Any] = {}
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{pid}/{key}"] = value
                entry[key] = {"tensor": f"optimizer/{pid}/{key}"}
            elif value is None or isinstance(value, (bool, int, float, str)):
                entry[key] = {"value": value}
            else:
                raise CheckpointError(
                    f"cannot checkpoint optimizer state {key!r} of type {type(value).__name__} "
                    "(only tensors and plain numbers are stored)")
        state_json[str(pid)] = entry
    groups: List[Dict[str, Any]] = []
    for g in sd.get("param_groups", []):
        out: Dict[str, Any] = {}
        tuples: List[str] = []
        for key, value in g.items():
            if isinstance(value, tuple):
                tuples.append(key)
                value = list(value)
            if isinstance(value, torch.Tensor):
                raise CheckpointError(f"cannot checkpoint optimizer hyper-parameter {key!r} held as a tensor")
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise CheckpointError(
                    f"cannot checkpoint optimizer hyper-parameter {key}={value!r}: not JSON-serializable") from None
            out[key] = value
        out["__tuples__"] = tuples
        groups.append(out)
    return tensors, {"state": state_json, "param_groups": groups}


def _unflatten_optimizer(tensors: Mapping[str, torch.Tensor], js: Any, path: Path) -> Dict[str, Any]:
    try:
        state: Dict[int, Dict[str, Any]] = {}
        for pid, entry in js["state"].items():
            st: Dict[str, Any] = {}
            for key, spec in entry.items():
                if "tensor" in spec:
                    st[key] = tensors[spec["tensor"]]
                else:
                    st[key] = spec["value"]
            state[int(pid)] = st
        groups = []
        for g in js["param_groups"]:
            g = dict(g)
            for key in g.pop("__tuples__", []):
                g[key] = tuple(g[key])
            groups.append(g)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path}: malformed optimizer state ({type(exc).__name__}: {exc})") from None
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------------------- RNG
def capture_rng_state() -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """The states of torch's CPU (and, when initialised, CUDA) generators, NumPy's global
    generator and Python's ``random``, as ``(tensors, json)``."""
    tensors: Dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
    js: Dict[str, Any] = {}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states = torch.cuda.get_rng_state_all()
        for i, s in enumerate(states):
            tensors[f"rng/cuda/{i}"] = s
        js["cuda_devices"] = len(states)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    js["numpy"] = {"kind": str(kind), "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    version, internal, gauss_next = random.getstate()
    tensors["rng/python"] = torch.tensor(internal, dtype=torch.int64)
    js["python"] = {"version": int(version), "gauss_next": gauss_next}
    return tensors, js


def restore_rng_state(tensors: Mapping[str, torch.Tensor], js: Mapping[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` captured (CUDA states only where the same
    number of devices is visible).

    Args:
        tensors: the checkpoint's tensors (the ``rng/...`` entries are used).
        js: the checkpoint's JSON metadata (the RNG scalars).

    Raises:
        CheckpointError: the stored RNG state is malformed (a forged or corrupted checkpoint).
    """
    try:
        _restore_rng_state(tensors, js)
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError, AttributeError, OverflowError) as exc:
        # OverflowError: numpy's set_state with an out-of-range integer (e.g. a forged pos = 2**31)
        raise CheckpointError(f"checkpoint holds a malformed random-number-generator state ({type(exc).__name__}: {exc})") from None


def _restore_rng_state(tensors: Mapping[str, torch.Tensor], js: Mapping[str, Any]) -> None:
    if "rng/torch" in tensors:
        torch.set_rng_state(tensors["rng/torch"].to(torch.uint8))
    n_cuda = int(js.get("cuda_devices", 0) or 0)
    if n_cuda and torch.cuda.is_available() and torch.cuda.device_count() == n_cuda:
        torch.cuda.set_rng_state_all([tensors[f"rng/cuda/{i}"].to(torch.uint8) for i in range(n_cuda)])
    if "rng/numpy" in tensors and "numpy" in js:
        npj = js["numpy"]
        np.random.set_state((npj["kind"], tensors["rng/numpy"].numpy().astype(np.uint32), int(npj["pos"]),
                             int(npj["has_gauss"]), float(npj["cached_gaussian"])))
    if "rng/python" in tensors and "python" in js:
        pj = js["python"]
        random.setstate((int(pj["version"]), tuple(int(v) for v in tensors["rng/python"].tolist()), pj["gauss_next"]))


# ----------------------------------------------------------------------------- save / load
def save_checkpoint(
    path: PathLike,
    *,
    model_state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    optimizer_state: Optional[Mapping[str, Any]] = None,
    best_state: Optional[Mapping[str, torch.Tensor]] = None,
    rng: bool = True,
) -> Path:
    """Write a checkpoint file atomically (temporary file, fsync, rename).

    Args:
        path: the file to write (conventionally ``<checkpoint_dir>/checkpoint.safetensors``).
        model_state: the model's ``state_dict()``.
        meta: JSON-serializable metadata (the trainer stores position, counters,
            history, config and dataset fingerprint here).
        optimizer_state: ``optimizer.state_dict()``.
        best_state: the best weights so far.
        rng: also store the RNG states of torch, NumPy and Python.

    Returns:
        The path written.

    Raises:
        CheckpointError: state that cannot be stored without pickle (named).
    """
    from safetensors.torch import save

    from .result import _jsonable

    path = Path(path)
    tensors: Dict[str, torch.Tensor] = {f"model/{k}": v for k, v in model_state.items()}
    if best_state is not None:
        tensors.update({f"best/{k}": v for k, v in best_state.items()})
    opt_json = None
    if optimizer_state is not None:
        opt_tensors, opt_json = _flatten_optimizer(optimizer_state)
        tensors.update(opt_tensors)
    rng_json = None
    if rng:
        rng_tensors, rng_json = capture_rng_state()
        tensors.update(rng_tensors)
    tensors = _cpu_unshared(tensors)
    body = {
        **_jsonable(dict(meta)),
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "has_best_state": best_state is not None,
        "optimizer": opt_json,
        "rng": rng_json,
    }
    try:
        body["sha256"] = _digest(tensors, body)
        text = json.dumps(body)  # key order kept: history rows keep their column order
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot write {path}: metadata is not JSON-serializable ({exc})") from None
    try:
        blob = save(tensors, metadata={_META_KEY: text})
    except Exception as exc:  # safetensors refuses e.g. unsupported dtypes
        raise CheckpointError(f"cannot write {path}: {type(exc).__name__}: {exc}") from None
    with atomic_write(path, "wb") as fh:
        fh.write(blob)
    return path


def _open_meta(path: Path) -> Tuple[Dict[str, Any], Any]:
    """(metadata dict, open safetensors handle) -- the handle must be closed by the caller."""
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # SafetensorError (header too large, bad JSON), OSError, ...
        raise CheckpointError(
            f"{path}: not a readable graphkit checkpoint (safetensors refused it: {exc}); "
            "graphkit checkpoints are safetensors files and are never unpickled") from None
    try:
        raw = handle.metadata() or {}
        text = raw.get(_META_KEY)
        if text is None:
            raise CheckpointError(f"{path}: a safetensors file without graphkit checkpoint metadata")
        try:
            meta = json.loads(text)
        except ValueError as exc:
            raise CheckpointError(f"{path}: malformed checkpoint metadata JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: not a graphkit training checkpoint (format {meta.get('format')!r})"
                                  if isinstance(meta, dict) else f"{path}: malformed checkpoint metadata")
        version = meta.get("format_version")
        if isinstance(version, bool) or version != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format_version {version!r}; this graphkit reads format_version "
                f"{CHECKPOINT_VERSION} (written by a different graphkit version?)")
    except BaseException:
        _close(handle)
        raise
    return meta, handle


def _close(handle: Any) -> None:
    with contextlib.suppress(Exception):
        handle.__exit__(None, None, None)


def read_checkpoint_meta(path: PathLike) -> Dict[str, Any]:
    """The JSON metadata of a checkpoint (position, counters, history, config, ...),
    read from the file header without loading any tensor (and so without verifying the
    sha256; :func:`load_checkpoint` verifies).

    Args:
        path: the checkpoint file.

    Raises:
        CheckpointError: a missing, unreadable or foreign file.
    """
    meta, handle = _open_meta(Path(path))
    _close(handle)
    return meta


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read and verify a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint file.

    Raises:
        CheckpointError: a missing file, a file that is not a graphkit checkpoint (a
            pickle or any other format is refused without being executed), another
            format version, or tensors that do not match the recorded sha256.
    """
    path = Path(path)
    meta, handle = _open_meta(path)
    try:
        try:
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        except Exception as exc:
            raise CheckpointError(f"{path}: unreadable tensor data ({type(exc).__name__}: {exc})") from None
    finally:
        _close(handle)
    claimed = meta.pop("sha256", None)
    if _digest(tensors, meta) != claimed:
        raise CheckpointError(f"{path}: content does not match the sha256 recorded in the file "
                              "(corrupted or modified checkpoint)")
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    best = {k[len("best/"):]: v for k, v in tensors.items() if k.startswith("best/")}
    opt = None
    if meta.get("optimizer") is not None:
        opt = _unflatten_optimizer(tensors, meta["optimizer"], path)
    rng_tensors = {k: v for k, v in tensors.items() if k.startswith("rng/")}
    return Checkpoint(
        path=path, meta=meta, model_state=model, optimizer_state=opt,
        best_state=best if meta.get("has_best_state") else None,
        rng={"tensors": rng_tensors, "json": meta.get("rng") or {}},
    )


# ----------------------------------------------------------------------------- helpers
def compare_fields(saved: Mapping[str, Any], current: Mapping[str, Any], keys: Sequence[str]) -> List[str]:
    """``["name: checkpoint X, now Y", ...]`` for every key whose JSON form differs.

    Args:
        saved: the values stored in the checkpoint.
        current: the values of the run being resumed.
        keys: the keys to compare.
    """
    from .result import _jsonable

    out = []
    for key in keys:
        a, b = _jsonable(saved.get(key)), _jsonable(current.get(key))
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            out.append(f"{key}: checkpoint {a!r}, now {b!r}")
    return out


@contextlib.contextmanager
def checkpoint_dir_lock(folder: PathLike) -> Iterator[None]:
    """Hold an exclusive, non-blocking inter-process lock on ``<folder>/.graphkit-train.lock``.

    Two training runs writing into the same checkpoint folder would overwrite each
    other's checkpoints; the second one fails fast instead.  The lock is a
    :class:`filelock.FileLock` taken with ``timeout=0`` (``flock`` on POSIX): it dies with
    its process (a ``kill -9``'d run does not leave the folder locked), and each call
    opens its own lock, so a second run in the same process is refused like one in
    another process.

    Raises:
        ConfigError: another process (or another training run in this process) holds it.
    """
    import filelock

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / ".graphkit-train.lock"), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise ConfigError(
            f"another training run is writing checkpoints into {folder}; use a different checkpoint_dir") from None
    try:
        yield
    finally:
        lock.release()


def remove_stale_temporaries(folder: PathLike, names: Sequence[str]) -> List[Path]:
    """Delete temporary files that :func:`graphkit.utils.atomic_write` left behind for
    ``names`` when its process was killed mid-write (``.<name>.<random>.tmp``).

    Only call while holding :func:`checkpoint_dir_lock`.  Returns the files removed.

    Args:
        folder: the checkpoint folder.
        names: the file names whose temporaries to remove.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for name in names:
        for p in folder.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed
