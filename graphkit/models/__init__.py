"""graphkit's models and a name registry for ``graphkit.fit`` and the CLI."""
from __future__ import annotations

import inspect
import re
from typing import Dict, List, NamedTuple, Optional, Tuple, Type

from ..exceptions import ConfigError
from .base import NodeModel, RecommenderModel
from .baselines import ALS, EASE, FittedRecommender, Popularity
from .catgcn import CatGCN, FieldSumGCN
from .dagnn import DAGNN
from .gcn import GCN
from .gcn_graph import GCNGraph
from .gin import GIN
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
    "gin": GIN,
    "gcn-graph": GCNGraph,
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


class ModelInfo(NamedTuple):
    """What :func:`model_info` says about one registered model (``graphkit models list``).

    Args:
        name: the registered name (``graphkit.fit(name, ...)``, ``graphkit fit NAME``).
        task: ``"recommendation"``, ``"node"`` (node classification), ... (the class's
            ``task`` attribute; recommendation models have none).
        class_path: the class as ``module.QualName``.
        paper: the paper's title, when the class docstring quotes it.
        authors: the paper's authors, short (``"He et al."``, ``"Kipf and Welling"``).
        venue: where it appeared (``"SIGIR"``, ``"IEEE TKDE"``, ``"arXiv"``).
        year: the year of publication.
        url: a link to the paper (arXiv).
        presets: the datasets with a paper preset (``preset="paper"``), in the class's order.
        fast_presets: the datasets with a fast recipe (``preset="fast"``); ``"*"`` means
            every dataset.  Empty: the model has no fast recipe.
    """

    name: str
    task: str
    class_path: str
    paper: Optional[str]
    authors: Optional[str]
    venue: Optional[str]
    year: Optional[int]
    url: Optional[str]
    presets: Tuple[str, ...]
    fast_presets: Tuple[str, ...]


_VENUE_YEAR = re.compile(r"\b((?:[A-Z][A-Za-z]+ )?[A-Z]{2,}[A-Za-z]*) ((?:19|20)\d\d)\b")
_ARXIV_ID = re.compile(r"arXiv[: ](\d{2})(\d{2})\.(\d{4,5})")
_URL = re.compile(r"https?://[^\s<>`]+")
_TITLE = re.compile(r'"([^"]{8,})"')
_SURNAME = re.compile(r"[A-Z][\w'-]+")


def _citation(cls: Type) -> Tuple[Optional[str], Optional[str], Optional[str], Optional[int], Optional[str]]:
    """``(title, authors, venue, year, url)`` read from the paragraph of ``cls``'s own docstring that
    cites the paper (the one starting with ``Paper:``, else the first); ``None`` where not found."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    paragraphs = [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]
    if not paragraphs:
        return None, None, None, None, None
    text = next((p for p in paragraphs if p.startswith("Paper:")), paragraphs[0])
    title_match = _TITLE.search(text)
    title = title_match.group(1) if title_match else None
    arxiv = _ARXIV_ID.search(text)
    url_match = _URL.search(text)
    url = url_match.group(0).rstrip(".,;)") if url_match else None
    if url is None and arxiv:
        url = f"https://arxiv.org/abs/{arxiv.group(1)}{arxiv.group(2)}.{arxiv.group(3)}"
    venue: Optional[str] = None
    year: Optional[int] = None
    venue_match = _VENUE_YEAR.search(text)
    if venue_match:
        venue, year = venue_match.group(1), int(venue_match.group(2))
    elif arxiv:
        venue, year = "arXiv", 2000 + int(arxiv.group(1))
    authors: Optional[str] = None
    et_al = re.search(r"([A-Z][\w'-]+) et al\.", text)
    if et_al:
        authors = f"{et_al.group(1)} et al."
    elif title_match:
        before = text[:title_match.start()]
        start = len("Paper:") if text.startswith("Paper:") else before.rfind("(") + 1
        names = [n.strip() for n in re.split(r",| and ", before[start:] if start > 0 else "") if n.strip()]
        surnames = [n.split()[-1] for n in names]
        if surnames and all(_SURNAME.fullmatch(s) for s in surnames):
            authors = (surnames[0] if len(surnames) == 1 else " and ".join(surnames) if len(surnames) == 2
                       else f"{surnames[0]} et al.")
    return title, authors, venue, year, url


def model_info(name: str) -> ModelInfo:
    """Task, class, paper and presets of the model registered as ``name`` (case-insensitive).

    The paper (title, authors, venue, year, link) is read from the citation in the class
    docstring (``Paper: A, B, "Title", KDD 2020, https://...`` or ``(He et al., SIGIR 2020)``);
    fields it does not give are ``None``.

    Args:
        name: a name from :func:`available_models`.

    Raises:
        ConfigError: an unknown name (the message lists the registered ones).
    """
    cls = get_model(name)
    title, authors, venue, year, url = _citation(cls)
    return ModelInfo(
        name=name.lower(),
        task=str(getattr(cls, "task", "recommendation")),
        class_path=f"{cls.__module__}.{cls.__qualname__}",
        paper=title, authors=authors, venue=venue, year=year, url=url,
        presets=tuple(getattr(cls, "presets", None) or ()),
        fast_presets=tuple(getattr(cls, "fast_presets", None) or ()),
    )


__all__ = [
    "RecommenderModel", "NodeModel", "FittedRecommender", "Popularity", "ALS", "EASE", "LightGCN", "UltraGCN", "GCN", "DAGNN", "CatGCN", "FieldSumGCN", "LargeGT",
    "GIN", "GCNGraph",
    "register_model", "available_models", "get_model", "model_info", "ModelInfo",
]
