"""Datasets: one entry point, :func:`load`, for every supported dataset.

>>> from graphkit import datasets
>>> rec = datasets.load("gowalla")                  # RecDataset (LightGCN split + validation)
>>> cora = datasets.load("cora", split="random", seed=1)   # NodeDataset
>>> esol = datasets.load("ogbg-molesol")            # GraphPropDataset (ogb, scaffold split)
>>> mine = datasets.load("/data/my_lightgcn_folder")   # any LightGCN-format folder
>>> df_ds = datasets.from_interactions(df, split="temporal", time_col="ts")
>>> own = datasets.as_dataset(obj)   # DataFrame, scipy/numpy matrix, PyG Data / HeteroData

Files are looked up under :func:`graphkit.utils.data_dir` (``$GRAPHKIT_DATA``, default
``~/.cache/graphkit``): ``<name>/train.txt`` for recommendation data,
``planetoid/raw/ind.<name>.*`` for Planetoid, ``ogb/<ogb folder>`` for OGB.
See ``docs/datasets.md``.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Union

from ..exceptions import ConfigError, DataNotFoundError, DatasetError
from ..utils import PathLike, data_dir
from ._manifest import canonical_name, load_manifest
from .download import cache_dir, download_file, ensure_files, verify
from .interactions import from_interactions
from .convert import (
    as_dataset, node_dataset_from_pyg, rec_dataset_from_frame, rec_dataset_from_hetero, rec_dataset_from_matrix,
)
from .node import NodeDataset
from .graph_collection import GraphBatch, GraphCollection
from .ogb_loader import GraphPropDataset, load_ogb_graph, load_ogb_node, ogb_names
from .planetoid import PLANETOID_NAMES, RestrictedUnpickler, load_planetoid, read_planetoid
from .recommendation import RecDataset, holdout_validation, load_lightgcn_folder, read_lightgcn_file
from .catgcn import (
    CategoricalFeatures, CatGCNData, categorical_from_node_dataset, load_catgcn, make_categorical_graph, save_catgcn,
)

__all__ = [
    "load",
    "available",
    "DatasetInfo",
    "verify",
    "from_interactions",
    "as_dataset",
    "rec_dataset_from_frame",
    "rec_dataset_from_matrix",
    "rec_dataset_from_hetero",
    "node_dataset_from_pyg",
    "RecDataset",
    "NodeDataset",
    "GraphPropDataset",
    "GraphCollection",
    "GraphBatch",
    "load_recommendation",
    "load_lightgcn_folder",
    "load_planetoid",
    "load_ogb_node",
    "load_ogb_graph",
    "load_ogb_folder",
    "read_lightgcn_file",
    "read_planetoid",
    "holdout_validation",
    "RestrictedUnpickler",
    "download_file",
    "ensure_files",
    "cache_dir",
    "CategoricalFeatures",
    "CatGCNData",
    "categorical_from_node_dataset",
    "load_catgcn",
    "make_categorical_graph",
    "save_catgcn",
]

RECOMMENDATION_NAMES = ("gowalla", "yelp2018", "amazon-book", "ml-1m")


class DatasetInfo(NamedTuple):
    """One entry of :func:`available`.

    Args:
        name: the name to pass to :func:`load`.
        task: ``"recommendation"``, ``"node-classification"``, ``"node-property (...)"``
            or ``"graph-property (...)"``.
        description: one line about the dataset.
    """

    name: str
    task: str
    description: str


def available() -> List[DatasetInfo]:
    """Every dataset name :func:`load` accepts, with its task type.

    Returns:
        A list of :class:`DatasetInfo` ``(name, task, description)``: the recommendation
        and Planetoid datasets with manifests, then the OGB node/graph property datasets
        known to the installed ``ogb`` package.  Any folder in LightGCN format is
        accepted too (pass its path).
    """
    out: List[DatasetInfo] = []
    for name in (*RECOMMENDATION_NAMES, *PLANETOID_NAMES):
        m = load_manifest(name)
        out.append(DatasetInfo(name, m.task if m else "", m.description if m else ""))
    for name, task in sorted(ogb_names().items()):
        m = load_manifest(name)
        out.append(DatasetInfo(name, task, m.description if m else "Open Graph Benchmark (downloaded by ogb)"))
    return out


def load_recommendation(
    name: str,
    root: Optional[PathLike] = None,
    *,
    val_ratio: float = 0.1,
    seed: int = 2020,
    download: bool = True,
) -> RecDataset:
    """Load a named recommendation dataset (gowalla, yelp2018, amazon-book, ml-1m).

    Files: ``<data_dir>/<name>/{train,test}.txt`` (then the cache folder), downloaded
    from the official repositories when missing and allowed.

    Args:
        name: one of ``gowalla``, ``yelp2018``, ``amazon-book``, ``ml-1m``.
        root: data folder (default :func:`graphkit.utils.data_dir`).
        val_ratio: fraction of each user's train items held out as validation (0: none).
        seed: seed of the validation hold-out (default 2020).
        download: allow downloading missing files.
    """
    key = canonical_name(name)
    manifest = load_manifest(key)
    if key not in RECOMMENDATION_NAMES or manifest is None:
        raise DatasetError(f"unknown recommendation dataset {name!r}; choose one of {', '.join(RECOMMENDATION_NAMES)}")
    paths = ensure_files(manifest, root, download=download)
    folder = Path(paths["train.txt"]).parent
    return load_lightgcn_folder(folder, name=key, val_ratio=val_ratio, seed=seed, manifest=manifest, paths=paths)


OGB_META_FILE = "meta_dict.json"


def load_ogb_folder(folder: PathLike, **kwargs: Any) -> Any:
    """Load a custom dataset stored in ogb's own layout, described by ``<folder>/meta_dict.json``.

    ``meta_dict.json`` holds ogb's ``meta_dict`` (``"num tasks"``, ``"task type"``,
    ``"eval metric"``, ``"num classes"``, ``"split"``, ``"version"``, ...) plus a ``"name"``
    starting with ``ogbn-`` (node property) or ``ogbg-`` (graph property).  ``dir_path``
    defaults to the folder itself.  ogb's own loader reads the files; OGB's Evaluator
    computes the metric named by ``"eval metric"``.

    Args:
        folder: the dataset folder (``raw/``, ``split/<split>/``, ``RELEASE_v<version>.txt``,
            ``meta_dict.json``).
        **kwargs: options of :func:`load_ogb_node` / :func:`load_ogb_graph` (``to_undirected``, ...).

    Raises:
        DataFormatError: ``meta_dict.json`` is not a JSON object with a valid ``name``.
    """
    import json

    from ..exceptions import DataFormatError

    folder = Path(folder).expanduser()
    path = folder / OGB_META_FILE
    try:
        md = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataFormatError(f"not readable JSON ({exc})", path=path) from None
    if not isinstance(md, dict):
        raise DataFormatError("expected a JSON object (ogb's meta_dict)", path=path, got=type(md).__name__)
    name = md.pop("name", None)
    if not isinstance(name, str) or not name.startswith(("ogbn-", "ogbg-")):
        raise DataFormatError("field 'name' must start with 'ogbn-' or 'ogbg-'", path=path,
                              expected="e.g. \"ogbn-mygraph\"", got=name)
    md["dir_path"] = str((folder / md["dir_path"]) if md.get("dir_path") else folder)
    loader = load_ogb_node if name.startswith("ogbn-") else load_ogb_graph
    return _call(loader, (name,), {"meta_dict": md, **kwargs}, f"OGB folder {folder}")


def _call(loader: Callable[..., Any], args: tuple, kwargs: Dict[str, Any], what: str) -> Any:
    """Call ``loader`` after checking that ``kwargs`` are parameters it accepts."""
    params = inspect.signature(loader).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        accepted = [p for p in params if p not in ("name", "root", "folder")]
        raise ConfigError(
            f"unexpected keyword argument(s) {', '.join(map(repr, unknown))} for {what}; "
            f"accepted: {', '.join(accepted)}"
        )
    return loader(*args, **kwargs)


def load(name_or_path: Union[str, os.PathLike], root: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """Load a dataset by name, or a LightGCN-format folder by path.

    Args:
        name_or_path: a name from :func:`available` (case-insensitive, ``_`` and ``-``
            interchangeable), any ``ogbn-*``/``ogbg-*`` name known to ogb, or the path of
            a folder holding ``train.txt``/``test.txt`` (LightGCN format), or the path of a
            custom dataset in ogb's own layout with a ``meta_dict.json`` (:func:`load_ogb_folder`).
        root: data folder (default :func:`graphkit.utils.data_dir`, i.e. ``$GRAPHKIT_DATA``).
        **kwargs: options of the specific loader:

            * recommendation (:func:`load_recommendation`, :func:`load_lightgcn_folder`):
              ``val_ratio=0.1``, ``seed=2020``, ``download=True``;
            * Planetoid (:func:`load_planetoid`): ``split="public"|"random"``, ``seed=0``,
              ``normalize_features=False``, ``num_train_per_class``, ``num_val``,
              ``num_test``, ``download=True``;
            * ``ogbn-*`` (:func:`load_ogb_node`): ``meta_dict``, ``to_undirected``, ``download``;
            * ``ogbg-*`` (:func:`load_ogb_graph`): ``meta_dict``, ``transform``,
              ``pre_transform``, ``download``.

    Returns:
        :class:`RecDataset`, :class:`NodeDataset` or :class:`GraphPropDataset`.

    Raises:
        DatasetError: unknown name (the message lists the valid names).
        DataNotFoundError: files missing and not downloadable (files and folder named).
        DataFormatError: malformed files (file, line and field named).
        ConfigError: an option the loader does not accept, or a bad value.
    """
    looks_like_path = isinstance(name_or_path, str) and (
        os.sep in name_or_path or "/" in name_or_path or name_or_path.startswith(".")
    )
    if isinstance(name_or_path, os.PathLike) or looks_like_path:
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(f"dataset folder {folder} does not exist")
        if (folder / OGB_META_FILE).is_file():
            return load_ogb_folder(folder, **kwargs)
        return _call(load_lightgcn_folder, (folder,), kwargs, f"LightGCN folder {folder}")
    if not isinstance(name_or_path, str):
        raise ConfigError(f"name_or_path must be a str or a path, got {type(name_or_path).__name__}")

    key = canonical_name(name_or_path)
    if key in RECOMMENDATION_NAMES:
        return _call(load_recommendation, (key, root), kwargs, f"dataset {key!r}")
    if key in PLANETOID_NAMES:
        return _call(load_planetoid, (key, root), kwargs, f"dataset {key!r}")
    if key.startswith("ogbn-") or key.startswith("ogbg-") or name_or_path.startswith(("ogbn", "ogbg")):
        # OGB names are case-sensitive (ogbn-papers100M): keep the user's spelling apart from "_" -> "-".
        ogb_name = name_or_path.strip().replace("_", "-")
        loader = load_ogb_node if ogb_name.startswith("ogbn-") else load_ogb_graph
        return _call(loader, (ogb_name, root), kwargs, f"dataset {ogb_name!r}")
    local = data_dir(root) / name_or_path
    if (local / "train.txt").is_file() and (local / "test.txt").is_file():
        return _call(load_lightgcn_folder, (local,), kwargs, f"LightGCN folder {local}")
    valid = ", ".join(d.name for d in available() if not d.name.startswith("ogb"))
    raise DatasetError(
        f"unknown dataset {name_or_path!r}. Valid names: {valid}, any ogbn-*/ogbg-* name known to ogb "
        f"(see graphkit.datasets.available()), or the path of a LightGCN-format folder (train.txt, test.txt)."
    )
