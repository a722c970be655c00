"""Open Graph Benchmark datasets through the ``ogb`` package.

``ogbn-*`` (node property prediction) datasets become a :class:`NodeDataset`;
``ogbg-*`` (graph property prediction) datasets a :class:`GraphPropDataset` wrapping
``ogb.graphproppred.PygGraphPropPredDataset``.  Files live in ``<data_dir>/ogb/<dir>``
in ogb's own layout (``ogbg-molesol`` -> ``ogb/ogbg_molesol``); the ogb package
downloads missing datasets itself.

What this module adds on top of ogb:

* **never blocks**: ogb calls ``input()`` when a dataset folder lacks its
  ``RELEASE_v<version>.txt`` marker or a download exceeds 1 GB.  The marker is checked
  first (clear :class:`DatasetError`), and ``input`` is replaced for the duration of
  the ogb call by a function that raises instead of waiting;
* **read-only data folders**: ogb writes ``processed/`` next to ``raw/``.  When the
  dataset folder is read-only (permission bits, e.g. a shared or CI-cached folder),
  it is copied once (without ``processed/``) to ``$GRAPHKIT_CACHE/ogb`` (default
  ``~/.cache/graphkit/ogb``) and loaded from there;
* **offline**: with the dataset absent and the network unreachable (or
  ``download=False``), a :class:`DataNotFoundError` names the folder and the files ogb
  expects, instead of a traceback from inside ogb;
* **torch >= 2.6**: ogb 1.3.6 calls ``torch.load`` with the new ``weights_only=True``
  default on files it wrote itself; the few PyG/numpy container types those files
  hold are allow-listed for the duration of the call (no blanket ``weights_only=False``).
"""
from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import torch

from ..exceptions import ConfigError, DataFormatError, DataNotFoundError, DatasetError, GraphError
from ..utils import PathLike, data_dir, fingerprint_arrays
from .download import cache_dir, file_lock, is_offline, is_writable_dir
from .node import NodeDataset, as_index_tensor, node_split_fingerprint
from .safe_pickle import restricted_load_torch_zip

__all__ = [
    "GraphPropDataset",
    "ogb_names",
    "load_ogb",
    "load_ogb_node",
    "load_ogb_graph",
    "ogb_node_evaluator",
    "ogb_node_metrics",
]


# ----------------------------------------------------------------------------- registry
@lru_cache(maxsize=None)
def _master(kind: str) -> Dict[str, Dict[str, str]]:
    """ogb's ``master.csv`` for ``kind`` in ("node", "graph") as {name: meta_info}."""
    import importlib.util

    import pandas as pd

    # find_spec locates the subpackage without importing it (ogb.graphproppred pulls in
    # torch_geometric and takes seconds); only the tiny top-level ``ogb`` is imported.
    spec = importlib.util.find_spec({"node": "ogb.nodeproppred", "graph": "ogb.graphproppred"}[kind])
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"ogb is not installed (needed for OGB {kind} datasets)")
    folder = Path(list(spec.submodule_search_locations)[0])
    df = pd.read_csv(folder / "master.csv", index_col=0, keep_default_na=False)
    return {str(col): {str(k): str(v) for k, v in df[col].items()} for col in df.columns}


def ogb_names() -> Dict[str, str]:
    """OGB datasets this loader supports, ``{name: task}``.

    ``task`` is ``"node-property (<ogb task type>)"`` or ``"graph-property (<ogb task type>)"``.
    Heterogeneous node datasets (``ogbn-mag``) are left out.  Empty when ``ogb`` is not
    installed.
    """
    try:
        node, graph = _master("node"), _master("graph")
    except ImportError:
        return {}
    out = {n: f"node-property ({m['task type']})" for n, m in node.items() if m.get("is hetero") != "True"}
    out.update({n: f"graph-property ({m['task type']})" for n, m in graph.items()})
    return out


# ----------------------------------------------------------------------------- guards
@contextlib.contextmanager
def _no_prompt(name: str, folder: Path) -> Iterator[None]:
    """Make any ``input()`` inside the block raise instead of waiting for a keyboard."""
    original = builtins.input

    def refuse(prompt: object = "") -> str:
        raise DatasetError(
            f"ogb asked an interactive question while loading {name!r}: {str(prompt).strip()!r}. "
            f"graphkit never answers prompts; download the dataset with ogb interactively, or place its "
            f"files in {folder} yourself."
        )

    builtins.input = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        builtins.input = original  # type: ignore[assignment]


def _torch_safe_globals() -> List[Any]:
    """Container types ogb's own processed files hold (PyG data objects, numpy arrays)."""
    from torch_geometric.data.data import Data, DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    dtypes = [type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                          np.float16, np.float32, np.float64)]
    return [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage,
            reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


@contextlib.contextmanager
def _ogb_call(name: str, folder: Path) -> Iterator[None]:
    ctx = getattr(torch.serialization, "safe_globals", None)
    with _no_prompt(name, folder), (ctx(_torch_safe_globals()) if ctx is not None else contextlib.nullcontext()), \
            warnings.catch_warnings():
        # ogb wraps read-only numpy label arrays in tensors; harmless, but noisy
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
        yield


# ----------------------------------------------------------------------------- folders
_COPY_SKIP = ("processed",)


_STAMP = ".graphkit_source.json"


def _tree_signature(folder: Path) -> List[Tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every file under ``folder`` except ``processed/``."""
    sig = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = Path(dirpath).relative_to(folder)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in _COPY_SKIP]
        for f in filenames:
            if f.endswith(".lock") or f == _STAMP:
                continue
            st = (Path(dirpath) / f).stat()
            sig.append(((rel / f).as_posix(), int(st.st_size), int(st.st_mtime_ns)))
    return sorted(sig)


def _private_copy(src: Path, dest: Path) -> Path:
    """Copy ``src`` (minus ``processed/``) to ``dest`` unless an up-to-date copy exists.

    The copy records the source's file list, sizes and modification times in
    ``.graphkit_source.json``; a changed source is copied again (dropping the stale
    ``processed/``).  The copy is built in a temporary sibling folder and renamed into
    place under a lock, so concurrent loaders never see a half-copied dataset.  Copies
    are writable whatever the permissions of the source.
    """
    import json

    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.parent / f".{dest.name}.lock"):
        want = _tree_signature(src)
        stamp = {"source": str(src.resolve()), "files": [list(e) for e in want]}
        try:
            if json.loads((dest / _STAMP).read_text()) == stamp:
                return dest
        except (OSError, ValueError):
            pass
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for rel, _size, _mtime in want:
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, target)
            (tmp / _STAMP).write_text(json.dumps(stamp))
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def _needs_copy(folder: Path) -> bool:
    processed = folder / "processed"
    if not is_writable_dir(folder):
        return True
    return processed.exists() and not is_writable_dir(processed)


def _check_release(folder: Path, version: str, name: str) -> None:
    marker = folder / f"RELEASE_v{version}.txt"
    if folder.is_dir() and not marker.is_file():
        raise DatasetError(
            f"OGB dataset folder {folder} exists but has no {marker.name}; ogb would stop and ask whether to "
            f"delete it and download version {version}. If the files there are release v{version}, create "
            f"{marker}; otherwise delete {folder} to let ogb download it (or pass download=False to stay offline)."
        )


def _expected_files(kind: str, info: Mapping[str, str]) -> List[str]:
    files = ["RELEASE_v{}.txt".format(info.get("version", "1")), "raw/edge.csv.gz",
             "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz"]
    if kind == "node":
        files += ["raw/node-feat.csv.gz", "raw/node-label.csv.gz"]
    else:
        if info.get("has_node_attr") == "True":
            files.append("raw/node-feat.csv.gz")
        if info.get("has_edge_attr") == "True":
            files.append("raw/edge-feat.csv.gz")
        files.append("raw/graph-label.csv.gz")
    extra = info.get("additional node files", "None")
    if extra and extra != "None":
        files += [f"raw/{f}.csv.gz" for f in extra.split(",")]
    split = info.get("split", "<split>")
    files += [f"split/{split}/{part}.csv.gz" for part in ("train", "valid", "test")]
    return files


def _probe(url: str, timeout: float = 15.0) -> Optional[str]:
    """``None`` when ``url`` answers, else the reason it does not (checked before ogb's
    own downloader, which has no timeout)."""
    try:
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        return None if exc.code in (403, 405) else f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def _resolve(
    name: str, kind: str, root: Optional[PathLike], meta_dict: Optional[Mapping[str, Any]], download: bool
) -> Tuple[str, Optional[Dict[str, Any]], Dict[str, str]]:
    """Decide where ogb should look; returns ``(ogb root, meta_dict to pass, meta info)``.

    Raises the clear errors (missing folder offline, missing release marker) that ogb
    itself would turn into a prompt or a traceback.
    """
    if meta_dict is not None:
        info = {str(k): str(v) for k, v in meta_dict.items()}
        if "dir_path" not in meta_dict:
            raise ConfigError("meta_dict must contain 'dir_path' (the dataset folder)")
        folder = Path(meta_dict["dir_path"]).expanduser()
        version = info.get("version", "1")
        if not folder.is_dir():
            raise DataNotFoundError(
                f"custom OGB dataset {name!r}: folder {folder} (meta_dict['dir_path']) does not exist; expected files: "
                + ", ".join(str(folder / f) for f in _expected_files(kind, info))
            )
        _check_release(folder, version, name)
        md = dict(meta_dict)
        if _needs_copy(folder):
            tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
            md["dir_path"] = str(_private_copy(folder, cache_dir() / "ogb" / "custom" / f"{folder.name}-{tag}"))
        else:
            md["dir_path"] = str(folder)
        return "", md, info

    master = _master(kind)
    if name not in master:
        raise DatasetError(
            f"unknown OGB {kind} dataset {name!r}; known: {', '.join(sorted(master))} "
            "(or pass meta_dict= for a custom dataset)"
        )
    info = master[name]
    if kind == "node" and info.get("is hetero") == "True":
        raise DatasetError(f"{name} is a heterogeneous graph; graphkit's NodeDataset holds homogeneous graphs only")
    dir_name = name.replace("-", "_")
    base = data_dir(root) / "ogb"
    cached_base = cache_dir() / "ogb"
    names = [dir_name + "_pyg", dir_name] if kind == "graph" else [dir_name]
    for b in (base, cached_base):
        for d in names:
            folder = b / d
            if folder.is_dir():
                _check_release(folder, info["version"], name)
                if _needs_copy(folder):
                    if (cached_base / d).resolve() == folder.resolve():
                        raise DatasetError(
                            f"OGB dataset folder {folder} is read-only and is also the cache folder; "
                            "set GRAPHKIT_CACHE to a writable folder"
                        )
                    _private_copy(folder, cached_base / d)
                    return str(cached_base), None, info
                return str(b), None, info

    # absent: ogb downloads it (into the data folder if writable, else the cache)
    folder = base / dir_name
    reason = None
    if not download:
        reason = "downloads are disabled (download=False)"
    elif is_offline():
        reason = "GRAPHKIT_OFFLINE is set"
    else:
        reason = _probe(info["url"])
    if reason is not None:
        raise DataNotFoundError(
            f"OGB dataset {name!r} not found in {folder}, and it was not downloaded: {reason}. Expected ogb's layout: "
            + ", ".join(str(folder / f) for f in _expected_files(kind, info))
            + f". ogb downloads it from {info['url']}; put the unzipped folder at {folder} "
            "(set GRAPHKIT_DATA or pass root= for another data folder)."
        )
    target = base if is_writable_dir(base) else cached_base
    target.mkdir(parents=True, exist_ok=True)
    return str(target), None, info


_REQUIRED_RAW = ("raw/edge.csv.gz", "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz")
_INTEGER_FILES = ("edge.csv.gz", "num-node-list.csv.gz", "num-edge-list.csv.gz", "node-label.csv.gz")


def _diagnose(folder: Path) -> Optional[Tuple[Path, str]]:
    """After ogb failed on ``folder``: the first of its csv.gz files that is missing (when
    required), not gzip, not CSV, or not a numeric table -- ``(path, reason)`` -- or None."""
    import pandas as pd

    for rel in _REQUIRED_RAW:
        if not (folder / rel).is_file():
            return folder / rel, "missing"
    for f in sorted(folder.glob("raw/*.csv.gz")) + sorted(folder.glob("split/*/*.csv.gz")):
        try:
            df = pd.read_csv(f, compression="gzip", header=None)
        except Exception as exc:  # gzip, zlib, EOF, pandas parser errors ...
            return f, f"{type(exc).__name__}: {exc}"
        integral = f.name in _INTEGER_FILES or f.parent.parent.name == "split"
        for col in df.columns:
            kind = df[col].dtype.kind
            if kind not in ("iu" if integral else "iuf") or (kind == "f" and df[col].isna().any() and integral):
                bad = df.index[~df[col].map(lambda v: isinstance(v, (int, float, np.number)))].tolist()
                row = bad[0] + 1 if bad else None
                want = "integers" if integral else "numbers"
                return f, f"column {col}: expected {want}, got dtype {df[col].dtype}" + (
                    f" (line {row}: {df[col].iloc[bad[0]]!r})" if bad else "")
    return None


def _run_ogb(factory: Callable[[], Any], name: str, folder: Path) -> Any:
    try:
        with _ogb_call(name, folder):
            return factory()
    except DatasetError:
        raise
    except (urllib.error.URLError, ConnectionError) as exc:
        raise DataNotFoundError(f"ogb could not download {name!r} into {folder}: {exc}") from exc
    except SystemExit as exc:  # ogb calls exit() when a download is declined
        raise DatasetError(f"ogb aborted loading {name!r} (exit code {exc.code})") from None
    except Exception as exc:  # corrupt files surface inside ogb as any exception type
        culprit = _diagnose(folder)
        if culprit is not None and culprit[1] == "missing":
            raise DataNotFoundError(f"OGB dataset {name!r}: required file missing: {culprit[0]} "
                                    f"(expected in folder {culprit[0].parent})") from exc
        where = f"; first unreadable file: {culprit[0]} ({culprit[1]})" if culprit else ""
        raise DataFormatError(f"ogb could not read {name!r} from {folder}: {type(exc).__name__}: {exc}{where}",
                              path=culprit[0] if culprit else folder) from exc


def _cached_node_arrays(folder: Path) -> Tuple[Optional[Dict[str, Any]], Optional[np.ndarray]]:
    """ogb's ``processed/data_processed`` read safely, or ``(None, None)`` to (re)process.

    ogb 1.3.6 re-reads that file with a bare ``torch.load``, which torch >= 2.6 refuses
    (numpy arrays, pickle protocol 4); it is read here with the restricted unpickler
    instead.  An unreadable file is removed so that ogb rebuilds it from ``raw/``.
    """
    path = folder / "processed" / "data_processed"
    if not path.is_file():
        return None, None
    try:
        obj = restricted_load_torch_zip(path)
        graph, labels = obj["graph"], obj["labels"]
        if not isinstance(graph, dict) or "edge_index" not in graph or "num_nodes" not in graph:
            raise DataFormatError("unexpected content", path=path)
        return graph, np.asarray(labels)
    except (DataFormatError, KeyError, TypeError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None, None


def _read_node_split(folder: Path, split_name: str) -> Dict[str, np.ndarray]:
    """ogb's ``split/<split_name>/{train,valid,test}.csv.gz`` as int64 arrays."""
    import pandas as pd

    base = folder / "split" / split_name
    out = {}
    for part in ("train", "valid", "test"):
        f = base / f"{part}.csv.gz"
        if not f.is_file():
            raise DataNotFoundError(f"OGB split file missing: {f} (expected in folder {base})")
        try:
            arr = pd.read_csv(f, compression="gzip", header=None).to_numpy()
        except Exception as exc:  # gzip, zlib, EOF, pandas parser errors ...
            raise DataFormatError(f"unreadable split file ({type(exc).__name__}: {exc})", path=f) from None
        if arr.dtype.kind not in "iu" or arr.ndim != 2 or arr.shape[1] != 1:
            raise DataFormatError("a split file holds one integer node id per line", path=f,
                                  expected="one integer column", got=f"{arr.shape[1] if arr.ndim == 2 else 0} "
                                  f"column(s) of dtype {arr.dtype}")
        out[part] = arr.reshape(-1).astype(np.int64)
    return out


# ----------------------------------------------------------------------------- node datasets
def load_ogb_node(
    name: str,
    root: Optional[PathLike] = None,
    *,
    meta_dict: Optional[Mapping[str, Any]] = None,
    to_undirected: bool = False,
    download: bool = True,
) -> NodeDataset:
    """Load an ``ogbn-*`` dataset (homogeneous) as a :class:`NodeDataset` with ogb's split.

    Args:
        name: e.g. ``"ogbn-arxiv"`` (or the name of a custom dataset given by ``meta_dict``).
        root: data folder; ogb files live in ``<root>/ogb`` (default :func:`graphkit.utils.data_dir`).
        meta_dict: ogb's ``meta_dict`` for a custom local dataset (``dir_path``, ``version``,
            ``num tasks``, ``task type``, ``eval metric``, ``num classes``, ``split``,
            ``add_inverse_edge``, ``additional node files``, ``additional edge files``,
            ``is hetero``, ``binary``, ``download_name``); passed through to ogb.
        to_undirected: add the reverse of every edge (ogbn-arxiv is directed; most
            papers train on the undirected graph).
        download: let ogb download a missing dataset.

    Returns:
        A :class:`NodeDataset`: ``split="public"``, ``y`` int64 ``[N]`` (``[N, T]`` for
        multi-task datasets; ``-1`` for missing labels), ``meta["evaluator"]`` = the
        name to pass to ``ogb.nodeproppred.Evaluator`` (``None`` for custom datasets).
        Edge features are not carried over.
    """
    from ogb.nodeproppred import NodePropPredDataset

    from ..graph import Graph

    ogb_root, md, info = _resolve(name, "node", root, meta_dict, download)
    if info.get("is hetero") == "True":
        raise DatasetError(f"{name} is heterogeneous; not supported by NodeDataset")
    folder = Path(md["dir_path"]) if md else Path(ogb_root) / name.replace("-", "_")
    g, labels = _cached_node_arrays(folder)
    if g is None:
        missing = [str(folder / rel) for rel in _REQUIRED_RAW if not (folder / rel).is_file()]
        if missing and (not download or is_offline()):  # ogb would download the whole dataset again
            raise DataNotFoundError(
                f"OGB dataset {name!r}: required file(s) missing: {', '.join(missing)}; not downloading them "
                f"({'download=False' if not download else 'GRAPHKIT_OFFLINE is set'})")
        if folder.is_dir():
            # NodePropPredDataset saves into processed/ without creating it (ogb's zips ship it)
            (folder / "processed").mkdir(exist_ok=True)
        ds = _run_ogb(lambda: NodePropPredDataset(name=name, root=ogb_root or "dataset", meta_dict=md), name, folder)
        g, labels = ds.graph, ds.labels
    split = _read_node_split(folder, info.get("split", ""))
    num_nodes = int(g["num_nodes"])
    edge_index = np.asarray(g["edge_index"], dtype=np.int64)
    if to_undirected:
        edge_index = np.concatenate([edge_index, edge_index[::-1]], axis=1)
    try:
        graph = Graph.from_edge_index(edge_index, num_nodes=num_nodes)
    except GraphError as exc:
        raise DataFormatError(f"invalid edge list ({exc}; the number of nodes comes from raw/num-node-list.csv.gz)",
                              path=folder / "raw" / "edge.csv.gz") from None
    for part, idx in split.items():
        bad = (idx < 0) | (idx >= num_nodes)
        if bad.any():
            raise DataFormatError("split node id out of range", path=folder / "split" / info.get("split", "") /
                                  f"{part}.csv.gz", expected=f"ids in [0, {num_nodes})", got=int(idx[bad][0]))
    for rel, arr in (("raw/node-label.csv.gz", labels), ("raw/node-feat.csv.gz", g.get("node_feat"))):
        if arr is not None and np.shape(arr)[0] != num_nodes:
            raise DataFormatError("row count differs from the number of nodes (raw/num-node-list.csv.gz)",
                                  path=folder / rel, expected=num_nodes, got=int(np.shape(arr)[0]))

    labels = np.asarray(labels)
    if labels.dtype.kind not in "biuf":
        raise DataFormatError("node labels must be numbers", path=folder / "raw" / "node-label.csv.gz",
                              expected="integers (or NaN for missing labels)", got=f"dtype {labels.dtype}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    y = np.where(np.isnan(labels), -1, labels).astype(np.int64) if labels.dtype.kind == "f" else labels.astype(np.int64)
    x = None if g.get("node_feat") is None else torch.from_numpy(np.ascontiguousarray(g["node_feat"], dtype=np.float32))
    train_idx, val_idx, test_idx = (np.asarray(split[k], dtype=np.int64) for k in ("train", "valid", "test"))
    known = name in _master("node") and meta_dict is None
    meta = {
        "format": "ogb",
        "folder": str(folder),
        "evaluator": name if known else None,
        "task_type": info.get("task type"),
        "eval_metric": info.get("eval metric"),
        "num_tasks": int(info.get("num tasks", 1)),
        "ogb_split": info.get("split"),
        "to_undirected": bool(to_undirected),
        "num_raw_edges": int(np.asarray(g["edge_index"]).shape[1]),
    }
    return NodeDataset(
        name=name,
        graph=graph,
        x=x,
        y=torch.from_numpy(y),
        train_idx=as_index_tensor(train_idx),
        val_idx=as_index_tensor(val_idx),
        test_idx=as_index_tensor(test_idx),
        num_classes=int(info.get("num classes", 0)),
        split="public",
        split_seed=None,
        fingerprint=node_split_fingerprint(train_idx, val_idx, test_idx, y),
        meta=meta,
    )


def ogb_node_evaluator(dataset: Any) -> Any:
    """OGB's ``ogb.nodeproppred.Evaluator`` for an OGB node dataset, or ``None`` for other datasets.

    Known datasets (``ogbn-arxiv``, ...) get ``Evaluator(name)``.  A custom dataset loaded
    with ``meta_dict`` gets an Evaluator whose ``eval_metric`` and ``num_tasks`` come from
    its ``meta_dict`` (ogb's constructor only accepts names from its own ``master.csv``);
    the metric computation is ogb's own either way.

    Args:
        dataset: a :class:`NodeDataset` (``meta["format"] == "ogb"`` for OGB datasets).
    """
    from ogb.nodeproppred import Evaluator

    meta = getattr(dataset, "meta", None) or {}
    if meta.get("format") != "ogb":
        return None
    if meta.get("evaluator"):
        return Evaluator(meta["evaluator"])
    metric = meta.get("eval_metric")
    if metric not in ("acc", "rocauc"):
        raise ConfigError(f"OGB dataset {getattr(dataset, 'name', '?')!r}: meta_dict 'eval metric' must be "
                          f"'acc' or 'rocauc' for ogb's node Evaluator, got {metric!r}")
    ev = Evaluator.__new__(Evaluator)
    ev.name = getattr(dataset, "name", "custom")
    ev.num_tasks = int(meta.get("num_tasks", 1))
    ev.eval_metric = metric
    return ev


def ogb_node_metrics(dataset: Any, logits: torch.Tensor, idx: torch.Tensor, prefix: str = "ogb_") -> Dict[str, float]:
    """Metrics of OGB's Evaluator on nodes ``idx`` (``{}`` for non-OGB datasets).

    Args:
        dataset: the :class:`NodeDataset` the logits belong to.
        logits: class scores of the ``idx`` nodes, ``[len(idx), C]``, row ``i`` for node ``idx[i]``.
        idx: node indices to evaluate (e.g. ``dataset.test_idx``).
        prefix: prepended to ogb's metric name (``"acc"`` -> ``"ogb_acc"``).

    Returns:
        ``{"ogb_acc": ...}`` (or ``ogb_rocauc``) as computed by ``Evaluator.eval``.
    """
    ev = ogb_node_evaluator(dataset)
    if ev is None or len(idx) == 0:
        return {}
    idx = idx.cpu()
    scores = logits.detach().cpu()
    if scores.shape[0] != len(idx):
        raise ConfigError(f"ogb_node_metrics: {scores.shape[0]} rows of scores for {len(idx)} nodes")
    y_true = dataset.y.cpu()[idx]
    if ev.eval_metric == "acc":
        y_true = y_true.reshape(len(idx), -1)
        y_pred = scores.argmax(dim=-1, keepdim=True)
    else:  # rocauc: one score per task
        y_true = y_true.reshape(len(idx), -1)
        y_pred = scores.reshape(len(idx), -1)
    out = ev.eval({"y_true": y_true.numpy(), "y_pred": y_pred.numpy()})
    return {prefix + k: float(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- graph datasets
@dataclass(eq=False)
class GraphPropDataset:
    """An OGB graph property prediction dataset with its official split.

    Args:
        name: dataset name, e.g. ``"ogbg-molesol"``.
        dataset: the ``ogb.graphproppred.PygGraphPropPredDataset`` (a PyG ``InMemoryDataset``;
            index it with ``split_idx`` tensors and feed it to a PyG ``DataLoader``).
        split_idx: ``{"train", "valid", "test"}`` int64 graph indices.
        task_type: ogb's task type (``"regression"``, ``"binary classification"``, ...).
        num_tasks: number of prediction targets per graph.
        eval_metric: ogb's metric name (``"rmse"``, ``"rocauc"``, ``"ap"``, ...).
        fingerprint: hash of the three split index arrays.
        meta: provenance (folder, split name, evaluator name).
    """

    name: str
    dataset: Any
    split_idx: Dict[str, torch.Tensor]
    task_type: str
    num_tasks: int
    eval_metric: str
    fingerprint: str
    meta: Dict[str, Any] = field(default_factory=dict)

    def evaluator(self) -> Any:
        """A fresh ``ogb.graphproppred.Evaluator`` for this dataset.

        Raises:
            DatasetError: custom (``meta_dict``) datasets have no ogb evaluator.
        """
        from ogb.graphproppred import Evaluator

        if self.meta.get("evaluator") is None:
            raise DatasetError(
                f"{self.name!r} is not an official OGB dataset; ogb's Evaluator only knows the official names"
            )
        return Evaluator(self.meta["evaluator"])

    @property
    def num_graphs(self) -> int:
        """Number of graphs."""
        return len(self.dataset)

    @property
    def collection(self) -> Any:
        """Every graph in flat arrays (:class:`~graphkit.datasets.GraphCollection`), built once:
        mini-batches are gathered from it without a Python loop per graph."""
        col = self.__dict__.get("_collection")
        if col is None:
            from .graph_collection import GraphCollection

            col = self.__dict__["_collection"] = GraphCollection.from_dataset(self)
        return col

    def split(self, part: str) -> Any:
        """The PyG sub-dataset of ``part`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if part not in self.split_idx:
            raise ConfigError(f"part must be one of {sorted(self.split_idx)}, got {part!r}")
        return self.dataset[self.split_idx[part]]

    def split_record(self) -> Dict[str, Any]:
        """``dict(dataset=, fingerprint=, split=)`` for result records."""
        return {"dataset": self.name, "fingerprint": self.fingerprint, "split": self.meta.get("ogb_split")}

    def __repr__(self) -> str:
        sizes = "/".join(str(len(self.split_idx[k])) for k in ("train", "valid", "test"))
        return (
            f"GraphPropDataset(name={self.name!r}, num_graphs={self.num_graphs}, task_type={self.task_type!r}, "
            f"num_tasks={self.num_tasks}, eval_metric={self.eval_metric!r}, train/valid/test={sizes}, "
            f"fingerprint={self.fingerprint!r})"
        )


def load_ogb_graph(
    name: str,
    root: Optional[PathLike] = None,
    *,
    meta_dict: Optional[Mapping[str, Any]] = None,
    transform: Optional[Callable[[Any], Any]] = None,
    pre_transform: Optional[Callable[[Any], Any]] = None,
    download: bool = True,
) -> GraphPropDataset:
    """Load an ``ogbg-*`` dataset through ``ogb.graphproppred.PygGraphPropPredDataset``.

    Args:
        name: e.g. ``"ogbg-molesol"`` (or a custom dataset's name with ``meta_dict``).
        root: data folder; ogb files live in ``<root>/ogb``.
        meta_dict: ogb's ``meta_dict`` for a custom local dataset; passed through.
        transform, pre_transform: PyG transforms, passed through.
        download: let ogb download a missing dataset.

    Returns:
        A :class:`GraphPropDataset` with ogb's split (e.g. scaffold for molecules).
    """
    from ogb.graphproppred import PygGraphPropPredDataset

    ogb_root, md, info = _resolve(name, "graph", root, meta_dict, download)
    folder = Path(md["dir_path"]) if md else Path(ogb_root) / name.replace("-", "_")
    ds = _run_ogb(
        lambda: PygGraphPropPredDataset(
            name=name, root=ogb_root or "dataset", transform=transform, pre_transform=pre_transform, meta_dict=md
        ),
        name,
        folder,
    )
    raw_split = _run_ogb(ds.get_idx_split, name, folder)
    split_idx = {k: as_index_tensor(raw_split[k]) for k in ("train", "valid", "test")}
    known = name in _master("graph") and meta_dict is None
    meta = {
        "format": "ogb",
        "folder": str(ds.root),
        "evaluator": name if known else None,
        "ogb_split": info.get("split"),
        "num_classes": int(info.get("num classes", "0") or 0),
    }
    return GraphPropDataset(
        name=name,
        dataset=ds,
        split_idx=split_idx,
        task_type=str(ds.task_type),
        num_tasks=int(ds.num_tasks),
        eval_metric=str(ds.eval_metric),
        fingerprint=fingerprint_arrays(
            split_idx["train"], split_idx["valid"], split_idx["test"], names=["train", "valid", "test"]
        ),
        meta=meta,
    )


def load_ogb(name: str, root: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """Dispatch on the prefix: ``ogbn-*`` -> :func:`load_ogb_node`, ``ogbg-*`` -> :func:`load_ogb_graph`.

    Args:
        name: the OGB dataset name.
        root: data folder.
        **kwargs: passed to the loader.
    """
    if name.startswith("ogbn-"):
        return load_ogb_node(name, root, **kwargs)
    if name.startswith("ogbg-"):
        return load_ogb_graph(name, root, **kwargs)
    raise DatasetError(f"{name!r} is not an ogbn-* or ogbg-* dataset (link prediction ogbl-* is not supported)")
