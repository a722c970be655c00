"""graphkit's models and a name registry for ``graphkit.fit`` and the CLI."""
from __future__ import annotations

from typing import Dict, List, Type

from ..exceptions import ConfigError
from .base import NodeModel, RecommenderModel
from .baselines import ALS, EASE, FittedRecommender, Popularity
from .catgcn import CatGCN, FieldSumGCN
from .dagnn import DAGNN
from .gcn import GCN
from .largegt import LargeGT
from .lightgcn import LightGCN
from .ultragcn import UltraGCN

_REGISTRY: Dict[str, Type] = {
    "lightgcn": LightGCN,
    "ultragcn": UltraGCN,
    "gcn": GCN,
    "dagnn": DAGNN,
    "catgcn": CatGCN,
    "fieldsumgcn": FieldSumGCN,
    "largegt": LargeGT,
    "popularity": Popularity,
    "als": ALS,
    "ease": EASE,
}


def register_model(name: str, cls: Type) -> None:
    """Make ``cls`` available to ``graphkit.fit`` and the CLI under ``name``."""
    _REGISTRY[name.lower()] = cls


def available_models() -> List[str]:
    """Names accepted by :func:`get_model`."""
    return sorted(_REGISTRY)


def get_model(name: str) -> Type:
    """The model class registered as ``name`` (case-insensitive)."""
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(available_models())}") from None


__all__ = [
    "RecommenderModel", "NodeModel", "FittedRecommender", "Popularity", "ALS", "EASE", "LightGCN", "UltraGCN", "GCN", "DAGNN", "CatGCN", "FieldSumGCN", "LargeGT",
    "register_model", "available_models", "get_model",
]
