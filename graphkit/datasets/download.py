"""Fetching and verifying dataset files.

Every named dataset (except OGB, which the ``ogb`` package downloads itself) has a
manifest listing its files, their official URLs and checksums.  The functions here

* locate the files of a dataset (the data folder first, then the cache folder),
* download missing ones with a progress bar, verifying sha256 (or md5 where no sha256
  is published) while streaming, writing to a temporary file that is renamed into
  place only when the checksum matches,
* serialise concurrent downloads of the same file with an advisory lock on
  ``<file>.lock``, so two processes leave exactly one good copy,
* and turn "offline and missing" into a :class:`DataNotFoundError` that names every
  missing file and the folder to put it in.

Files already present are **not** re-hashed on load (loading stays cheap); call
:func:`verify` to check them.

Environment variables:

* ``GRAPHKIT_DATA``: the data folder (see :func:`graphkit.utils.data_dir`).
* ``GRAPHKIT_CACHE``: where downloads and private copies go when the data folder is
  read-only (default ``~/.cache/graphkit``).
* ``GRAPHKIT_OFFLINE=1``: never touch the network.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Union

import filelock

from ..exceptions import ChecksumError, DataNotFoundError, DatasetError
from ..utils import PathLike, atomic_write, data_dir
from ._manifest import FileSpec, Manifest, canonical_name, load_manifest, manifest_names

__all__ = [
    "cache_dir",
    "is_offline",
    "is_writable_dir",
    "file_lock",
    "file_checksum_ok",
    "download_file",
    "ensure_files",
    "verify",
]

_CHUNK = 1 << 16


def cache_dir() -> Path:
    """Folder for downloads and private copies: ``$GRAPHKIT_CACHE`` or ``~/.cache/graphkit``."""
    env = os.environ.get("GRAPHKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "graphkit"


def is_offline() -> bool:
    """Whether ``GRAPHKIT_OFFLINE`` asks graphkit never to use the network."""
    return os.environ.get("GRAPHKIT_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def is_writable_dir(path: PathLike) -> bool:
    """Whether files can be created in ``path`` (or, if it does not exist, in its nearest
    existing ancestor).

    A folder whose permission bits grant nobody write access counts as read-only even
    for root, who could technically write there: a folder marked read-only (a shared
    dataset folder, a mounted CI cache) is treated as such.

    Args:
        path: the folder to test.
    """
    p = Path(path)
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    if not p.is_dir():
        return False
    mode = p.stat().st_mode
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(p, os.W_OK | os.X_OK)


@contextlib.contextmanager
def file_lock(path: PathLike) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``path`` for the block, waiting for it.

    A :class:`filelock.FileLock` (``flock`` on POSIX, ``msvcrt`` locking on Windows; a
    marker file on filesystems without either).  Each call opens its own lock, so two
    holders in one process exclude each other as two processes do (a thread waits for
    another thread's block to end); a nested call for the same path in the *same*
    thread can never get it (recent ``filelock`` versions raise ``RuntimeError`` rather
    than wait forever).  The lock file is
    created if needed and left in place afterwards (deleting it would race with a
    process waiting on it); the lock dies with its process.

    Args:
        path: the lock file, conventionally ``<file>.lock``.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(p), thread_local=False):
        yield


@contextlib.contextmanager
def try_file_lock(path: PathLike) -> Iterator[bool]:
    """Try to take an exclusive inter-process lock on ``path`` without waiting.

    Yields ``True`` (held for the block) or ``False`` (another process, or another
    holder in this process, has it; the block runs without it).  Same lock as
    :func:`file_lock` (``filelock.FileLock`` with ``timeout=0``).

    Args:
        path: the lock file, conventionally ``<file>.lock`` (created if needed, left in place).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(p), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo, usedforsecurity=False) if algo == "md5" else hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_checksum_ok(path: PathLike, spec: FileSpec) -> bool:
    """Whether the file at ``path`` matches ``spec``.

    The size is compared first when known; then sha256 when known, else md5 when known.
    A file whose manifest entry has no checksum at all only has to exist.

    Args:
        path: the local file.
        spec: its manifest entry.
    """
    p = Path(path)
    if not p.is_file():
        return False
    if spec.bytes is not None and p.stat().st_size != spec.bytes:
        return False
    if spec.sha256:
        return _hash_file(p, "sha256") == spec.sha256.lower()
    if spec.md5:
        return _hash_file(p, "md5") == spec.md5.lower()
    return True


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"graphkit/{version('graphkit')}"
    except Exception:  # not installed: running from a checkout
        return "graphkit"


def _fetch_once(
    url: str,
    dest: Path,
    *,
    sha256: Optional[str],
    md5: Optional[str],
    size: Optional[int],
    timeout: float,
    progress: bool,
) -> str:
    """Stream ``url`` into a temporary file beside ``dest``; rename it over ``dest`` only when
    the checksums match.  Returns the sha256 of what was written."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else size
        h256 = hashlib.sha256()
        h5 = hashlib.new("md5", usedforsecurity=False)
        n = 0
        # atomic_write removes the temporary file when anything below raises, so a
        # failed or corrupt transfer never leaves a partial file behind.
        with atomic_write(dest, "wb") as fh, tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=not progress, leave=False
        ) as bar:
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                fh.write(chunk)
                h256.update(chunk)
                h5.update(chunk)
                n += len(chunk)
                bar.update(len(chunk))
            got256, got5 = h256.hexdigest(), h5.hexdigest()
            if size is not None and n != size:
                raise ChecksumError(f"{url}: size mismatch for {dest.name}: expected {size} bytes, got {n} bytes")
            if sha256 and got256 != sha256.lower():
                raise ChecksumError(f"{url}: sha256 mismatch for {dest.name}: expected {sha256.lower()}, got {got256}")
            if not sha256 and md5 and got5 != md5.lower():
                raise ChecksumError(f"{url}: md5 mismatch for {dest.name}: expected {md5.lower()}, got {got5}")
    if not sha256 and not md5:
        warnings.warn(f"no checksum is known for {dest.name}; downloaded file has sha256 {got256}", stacklevel=3)
    return got256


def download_file(
    urls: Union[str, Sequence[str]],
    dest: PathLike,
    *,
    sha256: Optional[str] = None,
    md5: Optional[str] = None,
    size: Optional[int] = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download a file, verify it, and move it into place atomically.

    The URLs are tried in order (official location first, mirrors after).  While one
    process downloads ``dest``, others wanting the same file wait on ``<dest>.lock``
    and then find the finished file.  On a checksum mismatch the temporary file is
    deleted and the next URL is tried; if every URL fails the last
    :class:`ChecksumError` is raised.

    Args:
        urls: one URL or a sequence of URLs (``http(s)://`` or ``file://``).
        dest: where the file should end up.
        sha256: expected hex sha256 (preferred).
        md5: expected hex md5, checked only when ``sha256`` is not given.
        size: expected size in bytes, when known.
        timeout: socket timeout in seconds for each connection.
        progress: show a tqdm progress bar.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        ChecksumError: the downloaded content does not match (expected/got in the message).
        DataNotFoundError: no URL could be fetched (offline, HTTP error, ...).
    """
    url_list: List[str] = [urls] if isinstance(urls, str) else list(urls)
    if not url_list:
        raise DataNotFoundError(f"no download URL is known for {dest}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    spec = FileSpec(name=dest.name, bytes=size, sha256=sha256, md5=md5)
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file() and (sha256 or md5) and file_checksum_ok(dest, spec):
            return dest  # another process finished it while we waited for the lock
        failures: List[str] = []
        checksum_error: Optional[ChecksumError] = None
        for url in url_list:
            try:
                _fetch_once(url, dest, sha256=sha256, md5=md5, size=size, timeout=timeout, progress=progress)
                return dest
            except ChecksumError as exc:
                checksum_error = exc
                failures.append(str(exc))
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url}: {reason}")
        if checksum_error is not None:
            raise ChecksumError("; ".join(failures) + f" (the mismatching download was discarded; {dest} was not "
                                "written)") from checksum_error
        raise DataNotFoundError(f"could not download {dest.name}: " + "; ".join(failures))


def _candidate_folders(subdir: str, root: Optional[PathLike]) -> List[Path]:
    primary = data_dir(root) / subdir
    folders = [primary]
    cached = cache_dir() / subdir
    if cached.resolve() != primary.resolve():
        folders.append(cached)
    return folders


def locate_files(
    manifest: Manifest, root: Optional[PathLike] = None, names: Optional[Iterable[str]] = None
) -> Dict[str, Optional[Path]]:
    """Where each file of ``manifest`` is found: the data folder first, then the cache.

    Args:
        manifest: the dataset manifest.
        root: the data folder (default :func:`graphkit.utils.data_dir`).
        names: only these file names (default: all files of the manifest).

    Returns:
        ``{file name: path or None when absent}``.
    """
    wanted = list(names) if names is not None else [f.name for f in manifest.files]
    folders = _candidate_folders(manifest.subdir, root)
    out: Dict[str, Optional[Path]] = {}
    for name in wanted:
        out[name] = next((f / name for f in folders if (f / name).is_file()), None)
    return out


def ensure_files(
    manifest: Manifest,
    root: Optional[PathLike] = None,
    *,
    names: Optional[Iterable[str]] = None,
    download: bool = True,
    progress: bool = True,
    timeout: float = 60.0,
) -> Dict[str, Path]:
    """Make sure the files of a dataset are available locally; return their paths.

    Present files are used as they are (not re-hashed; see :func:`verify`).  Missing
    ones are downloaded into the data folder, or into :func:`cache_dir` when the data
    folder is read-only.  A dataset folder that does not exist yet is created only when a
    verified file is moved into it (the download is staged in a temporary folder), so a
    failed download leaves no folder and no lock file behind; concurrent calls still fetch
    each file once (see :func:`_fetch_into`).

    Args:
        manifest: the dataset manifest.
        root: the data folder (default :func:`graphkit.utils.data_dir`).
        names: only these files (default: all files of the manifest).
        download: allow network downloads (``GRAPHKIT_OFFLINE=1`` also forbids them).
        progress: show download progress bars.
        timeout: socket timeout per connection, seconds.

    Returns:
        ``{file name: local path}`` for every requested file.

    Raises:
        DataNotFoundError: files are missing and could not be downloaded; the message
            names each missing file (full path), its expected size/checksum, and the
            folder to put it in.
        ChecksumError: a download did not match its checksum.
    """
    found = locate_files(manifest, root, names)
    missing = [n for n, p in found.items() if p is None]
    if not missing:
        return {n: p for n, p in found.items() if p is not None}
    primary = data_dir(root) / manifest.subdir
    target = primary if is_writable_dir(primary) else cache_dir() / manifest.subdir

    reason: Optional[str] = None
    failures: List[str] = []
    if not download:
        reason = "downloads are disabled (download=False)"
    elif is_offline():
        reason = "GRAPHKIT_OFFLINE is set"
    elif any(not manifest.file(n).urls for n in missing):
        reason = "graphkit has no download URL for them"
    if reason is None:
        for n in missing:
            try:
                found[n] = _fetch_into(manifest.file(n), target / n, timeout=timeout, progress=progress)
            except DataNotFoundError as exc:
                failures.append(str(exc))
        if not failures:
            return {n: p for n, p in found.items() if p is not None}
        missing = [n for n, p in found.items() if p is None]
        reason = "the download failed"
    raise DataNotFoundError(_missing_message(manifest, primary, missing, reason, failures))


def _staging_lock(dest: Path) -> Path:
    """The lock that serialises :func:`ensure_files` downloads of ``dest`` on this machine: a
    file in the system temporary folder named after ``dest``'s absolute path (and the user),
    so it exists before ``dest``'s folder does."""
    key = hashlib.sha256(str(dest.absolute()).encode("utf-8", "surrogatepass")).hexdigest()[:24]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"graphkit-{uid}-download-{key}.lock"


@contextlib.contextmanager
def _lock_if_possible(path: Path) -> Iterator[None]:
    """:func:`file_lock` on ``path``, or no lock when it cannot be created (read-only temp)."""
    try:
        lock = filelock.FileLock(str(path), thread_local=False)
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _fetch_into(spec: FileSpec, dest: Path, *, timeout: float, progress: bool) -> Path:
    """Download ``spec`` to ``dest`` for :func:`ensure_files`.

    A folder that does not exist yet is created only once a verified file can be moved into
    it: the download is staged in a private temporary folder, so a failed or mismatching
    download leaves no folder and no lock file in the data folder.  Downloads of the same
    ``dest`` are serialised by :func:`_staging_lock` (and, once the folder exists, by
    ``<dest>.lock`` as in :func:`download_file`): a process that waited finds the finished
    file, and the file is fetched once.
    """
    fetch = dict(sha256=spec.sha256, md5=spec.md5, size=spec.bytes, timeout=timeout, progress=progress)
    with _lock_if_possible(_staging_lock(dest)):
        if dest.parent.is_dir():
            return download_file(spec.urls, dest, **fetch)
        with tempfile.TemporaryDirectory(prefix="graphkit-download-") as tmp:
            staged = download_file(spec.urls, Path(tmp) / dest.name, **fetch)
            return _install(staged, dest, spec)


def _install(staged: Path, dest: Path, spec: FileSpec) -> Path:
    """Move a verified staged download to ``dest``, creating its folder now, under ``dest``'s
    lock (a copy another process finished meanwhile is kept); atomic, copying when the
    temporary folder is on another filesystem."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file() and (spec.sha256 or spec.md5) and file_checksum_ok(dest, spec):
            return dest
        try:
            os.replace(staged, dest)
        except OSError:
            with atomic_write(dest, "wb") as out, open(staged, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    return dest


def _missing_message(
    manifest: Manifest, folder: Path, missing: Sequence[str], reason: str, failures: Sequence[str] = ()
) -> str:
    lines = [f"dataset {manifest.name!r}: {len(missing)} file(s) missing and not downloaded ({reason}):"]
    for n in missing:
        spec = manifest.file(n)
        facts = []
        if spec.bytes is not None:
            facts.append(f"{spec.bytes:,} bytes")
        if spec.sha256:
            facts.append(f"sha256 {spec.sha256}")
        elif spec.md5:
            facts.append(f"md5 {spec.md5}")
        lines.append(f"  {folder / n}" + (f"  ({', '.join(facts)})" if facts else ""))
        if spec.urls:
            lines.append(f"      from {spec.urls[0]}")
    lines.append(
        f"Put the file(s) in {folder} (set GRAPHKIT_DATA or pass root= to use another data folder)"
        + (", or allow downloads (download=True, GRAPHKIT_OFFLINE unset)." if not failures else ".")
    )
    if failures:
        lines.append("Download attempts:")
        lines.extend(f"  {f}" for f in failures)
    return "\n".join(lines)


def verify(name: str, root: Optional[PathLike] = None) -> Dict[str, bool]:
    """Check the local files of a named dataset against its manifest checksums.

    This is the expensive counterpart of the cheap load path: every present file is
    hashed (sha256, or md5 where only md5 is published).  Nothing is downloaded.

    Args:
        name: dataset name (``"gowalla"``, ``"cora"``, ``"ogbg-molesol"``, ...).
        root: the data folder (default :func:`graphkit.utils.data_dir`).

    Returns:
        ``{path: ok}`` for every file of the dataset; a missing file maps its expected
        path (in the data folder) to ``False``.

    Raises:
        DatasetError: no manifest (so no checksums) exists for ``name``.
    """
    manifest = load_manifest(canonical_name(name))
    if manifest is None:
        raise DatasetError(
            f"no manifest with checksums for dataset {name!r}; datasets with manifests: {', '.join(manifest_names())}"
        )
    primary = data_dir(root) / manifest.subdir
    out: Dict[str, bool] = {}
    for fname, path in locate_files(manifest, root).items():
        if path is None:
            out[str(primary / fname)] = False
        else:
            out[str(path)] = file_checksum_ok(path, manifest.file(fname))
    return out
