"""Small shared helpers: data folder, atomic writes, fingerprints, seeding, run records."""
from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import random
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, os.PathLike]


def data_dir(root: Optional[PathLike] = None) -> Path:
    """The folder datasets live in.

    ``root`` if given, else ``$GRAPHKIT_DATA``, else ``~/.cache/graphkit``.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GRAPHKIT_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "graphkit"


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    A crash or exception inside the block leaves ``path`` untouched and removes the
    temporary file, so readers never see a half-written file.

    Args:
        path: the final file name.
        mode: the ``open`` mode of the temporary file (``"wb"`` or ``"w"``).

    Yields:
        The open temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks.

    Args:
        path: the file.
        chunk: bytes read at a time.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint_arrays(*arrays: Any, names: Optional[Sequence[str]] = None) -> str:
    """A short stable hash of index arrays (numpy or torch), used to cite a split.

    The hash covers each array's dtype-normalised (int64 / float64) little-endian
    bytes and its shape, so the same split gives the same fingerprint on every
    machine.  Returns the first 16 hex digits of the sha256.

    Args:
        *arrays: the arrays to hash, in order.
        names: optional names, one per array, hashed with them.
    """
    h = hashlib.sha256()
    for i, arr in enumerate(arrays):
        if hasattr(arr, "detach"):
            arr = arr.detach().cpu().numpy()
        a = np.asarray(arr)
        a = a.astype("<i8" if a.dtype.kind in "iub" else "<f8", copy=False)
        name = names[i] if names is not None else str(i)
        h.update(f"{name}:{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a fresh NumPy ``Generator`` for the caller.

    Args:
        seed: the seed.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def package_versions() -> Dict[str, Optional[str]]:
    """Versions of graphkit and the packages results depend on (None when absent)."""
    from importlib import metadata

    out: Dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in ("graphkit", "torch", "torch-geometric", "numpy", "scipy", "numba", "ogb", "torch-scatter"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_description(device: Any = None) -> str:
    """A human-readable description of the device a run used (CPU model/threads or GPU name).

    Args:
        device: the device (``None``: the CPU).
    """
    import torch

    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    cpu = platform.processor() or platform.machine()
    return f"cpu:{cpu} ({torch.get_num_threads()} threads)"


def environment_record(device: Any = None) -> Dict[str, Any]:
    """The part of every result record that says what software and hardware produced it.

    Args:
        device: the device the run used (``None``: the CPU).
    """
    return {"versions": package_versions(), "device": device_description(device)}


__all__ = [
    "data_dir",
    "atomic_write",
    "sha256_file",
    "fingerprint_arrays",
    "seed_everything",
    "package_versions",
    "device_description",
    "environment_record",
]
