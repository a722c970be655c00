"""Small shared helpers: data folder, atomic writes, fingerprints, seeding, run records."""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import platform
import random
import re
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

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


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's file-creation mask (umask), read without changing it where possible.

    Linux reports it in ``/proc/self/status`` (``Umask:``, kernel 4.7+); elsewhere it is
    read the only portable way, ``os.umask(m); os.umask(old)``, under a lock and with a
    restrictive temporary mask (``0o077``), so a file another thread creates in that
    instant gets fewer permissions, never more.
    """
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o077)
        os.umask(old)
    return old


def fsync_dir(path: PathLike) -> None:
    """fsync a folder, so that renames and new entries in it survive a power cut.

    Best effort: platforms that cannot open a folder (Windows) are skipped.

    Args:
        path: the folder.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", *, perms: Optional[int] = None) -> Iterator[Any]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    A crash or exception inside the block leaves ``path`` untouched and removes the
    temporary file (``.<name>.<random>.tmp``), so readers never see a half-written file.
    The data is fsynced before the rename and the folder after it.

    The final file gets the permissions a plain ``open(path, "w")`` would give it,
    ``0o666 & ~umask`` (see :func:`current_umask`), not the ``0o600`` of
    ``tempfile.mkstemp``.

    Args:
        path: the final file name.
        mode: the ``open`` mode of the temporary file (``"wb"`` or ``"w"``).
        perms: permission bits of the final file (default ``0o666 & ~umask``).

    Yields:
        The open temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bits = (0o666 & ~current_umask()) if perms is None else perms
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), bits)
            else:  # pragma: no cover - Windows
                os.chmod(tmp, bits)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


_LEFTOVER = r"\.{name}\.[a-z0-9_]{{8}}\.(tmp|old)"
_TRAIN_LOCK_NAME = ".graphkit-train.lock"


def folder_leftovers(path: PathLike) -> List[Path]:
    """Folders that an interrupted :func:`atomic_folder` for ``path`` left beside it.

    ``.<name>.<8 random characters>.tmp`` (a folder being built) and ``.<name>.<8
    random characters>.old`` (the previous folder, moved aside for the swap), newest
    first.

    Args:
        path: the folder :func:`atomic_folder` writes.
    """
    path = Path(os.path.abspath(path))
    pattern = re.compile(_LEFTOVER.format(name=re.escape(path.name)))
    found = []
    try:
        entries = os.listdir(path.parent)
    except OSError:
        return []
    for entry in entries:
        p = path.parent / entry
        if pattern.fullmatch(entry) and p.is_dir() and not p.is_symlink():
            with contextlib.suppress(OSError):
                found.append((p.stat().st_mtime, entry, p))
    return [p for _, _, p in sorted(found, reverse=True)]


@contextlib.contextmanager
def atomic_folder(path: PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name; put it in place of ``path`` as a whole.

    The block receives an empty folder ``<parent>/.<name>.<random>.tmp`` to fill.  When
    it ends without an exception:

    1. every entry of the existing ``path`` that the block did not write (e.g. a
       ``checkpoints/`` folder written by training) is **moved** into the new folder, so
       a save never deletes what it did not write itself;
    2. the new folder is fsynced and renamed to ``path``.  An existing ``path`` is first
       renamed aside to ``.<name>.<random>.old`` and deleted after the swap, so a reader
       that opens ``path`` sees the old complete folder or the new complete one, never a
       mix.  Between the two renames (microseconds) ``path`` does not exist; a crash
       exactly there leaves the previous folder as ``.<name>.<random>.old``, which the
       next :func:`atomic_folder` for ``path`` renames back before it starts.

    An exception in the block removes the temporary folder and leaves ``path`` as it
    was.  Leftovers of an interrupted call (a ``kill -9`` while building, a crash during
    the swap) are cleaned up by the next call for the same ``path``; entries of the old
    folder that a crash left in such a leftover are carried into the new folder.

    The whole operation holds an inter-process lock (``filelock``) on
    ``<parent>/.<name>.lock`` (left in place), so concurrent calls for one ``path``
    happen one after the other.  The new folder gets ``0o777 & ~umask``; moved entries
    keep their permissions.

    Args:
        path: the folder to (re)place.  Not the current directory or one of its parents,
            nor a symbolic link.

    Yields:
        The temporary folder to write into.

    Raises:
        ConfigError: ``path`` is a file, a symbolic link or contains the current
            directory, or one of the entries to move is a checkpoint folder that a live
            training run holds (``.graphkit-train.lock``).
    """
    from filelock import FileLock

    from .exceptions import ConfigError

    path = Path(os.path.abspath(path))
    parent, name = path.parent, path.name
    cwd = Path(os.path.abspath(os.getcwd()))
    if not name or path == cwd or path in cwd.parents:
        raise ConfigError(f"cannot replace {path}: it is (or contains) the current directory; give a subfolder")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ConfigError(f"cannot save to {path}: it exists and is not a folder (or is a symbolic link)")
    parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(parent / f".{name}.lock"), thread_local=False):
        stale = folder_leftovers(path)
        if not path.exists():
            olds = [p for p in stale if p.name.endswith(".old")]
            if olds:  # a crash between the two renames of an earlier call: put the old folder back
                os.rename(olds[0], path)
                stale.remove(olds[0])
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))
        try:
            os.chmod(tmp, 0o777 & ~current_umask())
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _commit_folder(tmp, path, stale)


def open_folder_snapshot(folder: PathLike, names: Sequence[str], what: str = "saved folder") -> Dict[str, Any]:
    """Open ``names`` in ``folder`` (``None`` for a missing file), all from one and the same folder
    even while :func:`atomic_folder` swaps it.

    The files are opened relative to one open handle of the folder; when some are missing and the
    folder was replaced in between, the opening is retried (briefly waiting out the instant of a
    swap when the folder is absent).  Files in such folders are never changed in place, so what the
    handles read is one consistent save.  The caller closes the handles.

    Args:
        folder: the folder.
        names: file names inside it.
        what: what the folder holds, for error messages (``"saved Recommender"``).

    Raises:
        CheckpointError: no such folder (naming a leftover of an interrupted save when there is
            one), not a folder, or it cannot be opened.
    """
    import time

    from .exceptions import CheckpointError

    folder = Path(folder)
    if os.open not in os.supports_dir_fd:  # pragma: no cover - Windows: plain paths
        return {n: (open(folder / n, "rb") if (folder / n).is_file() else None) for n in names}
    out: Dict[str, Any] = {}
    for attempt in range(50):
        try:
            dfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            left = [p for p in folder_leftovers(folder) if p.name.endswith(".old")]
            if left and attempt < 49:  # between the two renames of a swap the folder is briefly absent
                time.sleep(0.002)
                continue
            hint = f" (an interrupted save left the previous one in {left[0]})" if left else ""
            raise CheckpointError(f"{folder}: no such folder; not a {what}{hint}") from None
        except NotADirectoryError:
            raise CheckpointError(f"{folder}: not a folder; not a {what}") from None
        except OSError as exc:
            raise CheckpointError(f"{folder}: cannot open ({exc})") from None
        out = {}
        try:
            inode = os.fstat(dfd).st_ino
            for name in names:
                try:
                    fd = os.open(name, os.O_RDONLY, dir_fd=dfd)
                except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                    out[name] = None
                    continue
                out[name] = os.fdopen(fd, "rb")
        finally:
            os.close(dfd)
        if all(v is not None for v in out.values()):
            return out
        try:
            if os.stat(folder).st_ino == inode:
                return out  # really missing, not replaced meanwhile
        except FileNotFoundError:
            pass
        for fh in out.values():
            if fh is not None:
                fh.close()
    return out


def _is_temporary_of(entry: str, names: Any) -> bool:
    """Whether ``entry`` is an :func:`atomic_write` temporary (``.<name>.<random>.tmp``) of one of ``names``."""
    m = re.fullmatch(r"\.(.+)\.[a-z0-9_]{8}\.tmp", entry)
    return m is not None and m.group(1) in names


def _commit_folder(tmp: Path, path: Path, stale: List[Path]) -> None:
    """The second half of :func:`atomic_folder`: carry entries over, swap, clean up."""
    from filelock import FileLock, Timeout

    from .exceptions import ConfigError

    parent, name = path.parent, path.name
    have = set(os.listdir(tmp))
    moved: List[tuple] = []
    held: List[Any] = []
    aside: Optional[Path] = None
    try:
        for source in ([path] if path.is_dir() else []) + stale:
            for entry in sorted(os.listdir(source)):
                if entry in have or _is_temporary_of(entry, have):
                    continue
                src = source / entry
                lock_file = src / _TRAIN_LOCK_NAME
                if src.is_dir() and not src.is_symlink() and lock_file.is_file():
                    lock = FileLock(str(lock_file), timeout=0, thread_local=False)
                    try:
                        lock.acquire()
                    except Timeout:
                        raise ConfigError(f"another training run is writing checkpoints into {src}; "
                                          f"not replacing {path} while it runs") from None
                    held.append(lock)
                os.rename(src, tmp / entry)
                moved.append((src, tmp / entry))
                have.add(entry)
        fsync_dir(tmp)
        if path.exists():
            aside = parent / f".{name}.{secrets.token_hex(4)}.old"
            os.rename(path, aside)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(aside, path)
                aside = None
                raise
        else:
            os.rename(tmp, path)
        fsync_dir(parent)
    except BaseException:
        restored = True
        for src, dst in reversed(moved):
            try:
                os.rename(dst, src)
            except OSError:
                restored = False
        if restored:  # else the next call carries the entries over from the leftover
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for lock in held:
            lock.release()
    for leftover in ([aside] if aside is not None else []) + stale:
        shutil.rmtree(leftover, ignore_errors=True)
    fsync_dir(parent)


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


def is_finite_real(value: Any) -> bool:
    """Whether ``value`` is a finite real number: a Python or NumPy int/float, not a bool, and
    not an integer too large for a float (``np.isfinite(10**30)`` raises ``TypeError``;
    this never raises).

    Args:
        value: anything.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


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
    return f"cpu:{cpu_model()} ({torch.get_num_threads()} threads)"


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux: ``model name`` in ``/proc/cpuinfo``, with the architecture),
    else ``platform.processor()`` or the architecture.  ``platform.processor()`` alone says
    ``x86_64`` on Linux, which once hid that two sessions' timings came from different CPUs.

    Args:
        cpuinfo: the file to read (a parameter for tests).
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return f"{value.strip()}, {platform.machine()}"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_record(device: Any = None) -> Dict[str, Any]:
    """The part of every result record that says what software and hardware produced it.

    Args:
        device: the device the run used (``None``: the CPU).
    """
    return {"versions": package_versions(), "device": device_description(device)}


__all__ = [
    "data_dir",
    "atomic_write",
    "open_folder_snapshot",
    "atomic_folder",
    "current_umask",
    "fsync_dir",
    "folder_leftovers",
    "sha256_file",
    "fingerprint_arrays",
    "seed_everything",
    "package_versions",
    "device_description",
    "environment_record",
]
