"""graphkit: graph learning and recommendation on PyTorch.

The public names (``graphkit.fit``, ``graphkit.Graph``, ``graphkit.Recommender``,
``graphkit.datasets``, ...) are imported on first use (PEP 562 module ``__getattr__``), so
``import graphkit`` alone does not import torch: ``graphkit --help`` answers at once.
``from graphkit import fit``, ``graphkit.LightGCN`` and ``dir(graphkit)`` work as with eager
imports; the submodule holding a name is imported the first time the name is read.
"""
import importlib as _importlib
import typing as _typing

# The exceptions are plain Python (no torch): imported eagerly.
from .exceptions import (  # noqa: F401
    CheckpointError, ChecksumError, ConfigError, DataFormatError, DataNotFoundError,
    DatasetError, GraphError, GraphkitError, NotFittedError, TrainingError,
)

__version__ = "0.1.0"

#: ``{public name: submodule that defines it}`` (relative to ``graphkit``).
_LAZY_NAMES: _typing.Dict[str, str] = {
    "Graph": ".graph", "spmm": ".graph",
    "GCN": ".models", "DAGNN": ".models", "CatGCN": ".models", "LargeGT": ".models",
    "LightGCN": ".models", "UltraGCN": ".models",
    "FitResult": ".training", "fit": ".training",
    "TuneResult": ".tuning", "tune": ".tuning",
    "pretrain": ".pretraining", "PretrainResult": ".pretraining",
    "GIN": ".models", "GCNGraph": ".models",
    "Recommender": ".recommender", "leave_last_out": ".recommender", "temporal_split": ".recommender",
}
#: Submodules readable as attributes of ``graphkit`` without importing them first
#: (``graphkit.datasets.load(...)`` after a plain ``import graphkit``).
_LAZY_SUBMODULES = (
    "datasets", "exceptions", "feature_store", "graph", "metrics", "models", "pretraining", "recommender", "sampling",
    "training", "tuning", "utils", "w2pgnn", "_cluster",
)

__all__ = [
    "CheckpointError", "ChecksumError", "ConfigError", "DataFormatError", "DataNotFoundError", "DatasetError",
    "GraphError", "GraphkitError", "NotFittedError", "TrainingError",
    *_LAZY_NAMES,
    *(m for m in _LAZY_SUBMODULES if not m.startswith("_")),
]

if _typing.TYPE_CHECKING:  # static analysers see the eager imports
    from . import datasets, feature_store, graph, metrics, models, recommender, sampling  # noqa: F401
    from . import training, tuning, utils, w2pgnn  # noqa: F401
    from .graph import Graph, spmm  # noqa: F401
    from .models import GCN, DAGNN, CatGCN, LargeGT, LightGCN, UltraGCN  # noqa: F401
    from .recommender import Recommender, leave_last_out, temporal_split  # noqa: F401
    from .training import FitResult, fit  # noqa: F401
    from .tuning import TuneResult, tune  # noqa: F401
    from .pretraining import PretrainResult, pretrain  # noqa: F401
    from .models import GIN, GCNGraph  # noqa: F401


def __getattr__(name: str) -> _typing.Any:
    """Import the submodule behind a public name on first access (PEP 562).

    Args:
        name: the attribute read on the ``graphkit`` module.
    """
    if name in _LAZY_NAMES:
        value = getattr(_importlib.import_module(_LAZY_NAMES[name], __name__), name)
    elif name in _LAZY_SUBMODULES:
        value = _importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later reads skip __getattr__
    return value


#: Helpers of this file, left out of ``dir(graphkit)``.
_HIDDEN = frozenset({"_importlib", "_typing", "_LAZY_NAMES", "_LAZY_SUBMODULES", "_HIDDEN"})


def __dir__() -> _typing.List[str]:
    """The module's names, including the public ones not imported yet."""
    return sorted((set(globals()) - _HIDDEN) | set(_LAZY_NAMES) | set(_LAZY_SUBMODULES))
