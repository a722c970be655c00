"""Every public class, function and method of graphkit has a docstring that names its arguments.

The walk covers every graphkit module whose dotted name has no component starting with ``_``
(``graphkit``, ``graphkit.datasets``, ``graphkit.datasets.catgcn``, ``graphkit.models.lightgcn``,
``graphkit.training.node``, ``graphkit.w2pgnn.gw``, ...).  The public names of a module are its
``__all__``, or, without one, the names not starting with ``_`` that the module itself defines.
Only objects defined in graphkit count (re-exported torch/numpy names are skipped); a public
name re-exported from a private module (``graphkit.selftask._utils.label_propagation``) counts.

Checked:

* every public class and function has a docstring;
* every named parameter of a public function, and of a class's ``__init__`` (documented in the
  class docstring or the ``__init__`` docstring), appears in that docstring as a word.  ``self``,
  ``cls``, ``*args`` and ``**kwargs`` are exempt;
* every public method and property defined in a public class has a docstring, its own or the
  one of the method it overrides in a graphkit base class, that names the method's parameters.

The API reference (``docs/api/*.md``, mkdocstrings) renders these docstrings.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

import graphkit

# Modules left out of the walk.  To leave one out, add its name here (none is).
EXCLUDED_MODULES: Set[str] = set()

# Known gaps: "qualified.name" (missing docstring) or "qualified.name:param" (parameter not
# named in the docstring).  The test fails when an entry is no longer a gap, so the list only
# shrinks: fix the docstring, then delete the line.
PENDING: Set[str] = set()


def _is_public_module(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split(".")[1:])


def public_modules() -> List[str]:
    """``graphkit`` and every public submodule, minus :data:`EXCLUDED_MODULES`."""
    names = ["graphkit"]
    for info in pkgutil.walk_packages(graphkit.__path__, "graphkit."):
        if _is_public_module(info.name) and info.name not in EXCLUDED_MODULES:
            names.append(info.name)
    return sorted(names)


def _defined_in_graphkit(obj: Any) -> bool:
    mod = getattr(obj, "__module__", None) or ""
    return (mod == "graphkit" or mod.startswith("graphkit.")) and mod not in EXCLUDED_MODULES


def public_objects() -> Dict[str, Any]:
    """``{qualified name: object}`` of every public class and function (deduplicated)."""
    found: Dict[str, Any] = {}
    for modname in public_modules():
        module = importlib.import_module(modname)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n, v in vars(module).items()
                     if not n.startswith("_") and getattr(v, "__module__", None) == modname]
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not _defined_in_graphkit(obj):
                continue
            found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return found


def _mentions(doc: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", doc) is not None


def _named_params(func: Any) -> List[str]:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _graphkit_bases(cls: type) -> List[type]:
    return [b for b in cls.__mro__[1:] if _defined_in_graphkit(b)]


def _class_doc(cls: type) -> str:
    """The class docstring plus its own ``__init__``'s; the graphkit base classes' docstrings
    too when ``__init__`` is inherited or generated (dataclass and named-tuple fields)."""
    parts = [cls.__dict__.get("__doc__") or ""]
    init = cls.__dict__.get("__init__")
    if init is not None and getattr(init, "__doc__", None):
        parts.append(init.__doc__)
    if init is None or dataclasses.is_dataclass(cls) or issubclass(cls, tuple):
        parts.extend(b.__dict__.get("__doc__") or "" for b in _graphkit_bases(cls))
    return "\n".join(parts)


def _unwrap(member: Any) -> Any:
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    return member


def _method_doc(cls: type, name: str) -> str:
    """The method's own docstring, else that of the method it overrides in a graphkit base."""
    for owner in (cls, *_graphkit_bases(cls)):
        member = owner.__dict__.get(name)
        if member is None:
            continue
        doc = (member.fget.__doc__ if isinstance(member, property) and member.fget else _unwrap(member).__doc__)
        if doc:
            return doc
    return ""


def _methods(cls: type) -> Iterator[Tuple[str, Any]]:
    for name, member in cls.__dict__.items():
        if name.startswith("_"):
            continue
        if isinstance(member, property) or inspect.isfunction(_unwrap(member)):
            yield name, member


def docstring_gaps() -> List[str]:
    """Every gap, as ``"qualified.name"`` (no docstring) or ``"qualified.name:param"``."""
    gaps: List[str] = []
    for qual, obj in sorted(public_objects().items()):
        if inspect.isfunction(obj):
            doc = inspect.getdoc(obj) or ""
            if not doc:
                gaps.append(qual)
                continue
            gaps.extend(f"{qual}:{p}" for p in _named_params(obj) if not _mentions(doc, p))
            continue
        if not obj.__dict__.get("__doc__"):
            gaps.append(qual)
        doc = _class_doc(obj)
        gaps.extend(f"{qual}:{p}" for p in _named_params(obj) if not _mentions(doc, p))
        for name, member in _methods(obj):
            mdoc = _method_doc(obj, name)
            if not mdoc:
                gaps.append(f"{qual}.{name}")
                continue
            if not isinstance(member, property):
                gaps.extend(f"{qual}.{name}:{p}" for p in _named_params(_unwrap(member)) if not _mentions(mdoc, p))
    return gaps


@pytest.fixture(scope="module")
def gaps() -> List[str]:
    return docstring_gaps()


def test_walk_covers_the_public_api():
    objects = public_objects()
    for qual in (
        "graphkit.training.fit", "graphkit.training.result.FitResult", "graphkit.graph.Graph",
        "graphkit.models.lightgcn.LightGCN", "graphkit.models.ultragcn.UltraGCN", "graphkit.models.gcn.GCN",
        "graphkit.models.dagnn.DAGNN", "graphkit.models.catgcn.CatGCN", "graphkit.models.largegt.LargeGT",
        "graphkit.selftask.joint.SSLJointModel", "graphkit.w2pgnn.measure.feasibility",
        "graphkit.datasets.load", "graphkit.metrics.ranking_metrics", "graphkit.recommender.Recommender",
        "graphkit.feature_store.MemMapStore", "graphkit.sampling.NeighborSampler",
        "graphkit.exceptions.DataFormatError", "graphkit.selftask._utils.label_propagation",
    ):
        assert qual in objects, f"{qual} is not walked"
    assert len(objects) > 150
    assert not any(q.startswith(tuple(m + "." for m in EXCLUDED_MODULES)) for q in objects)
    assert {"graphkit.cli", "graphkit.bench"} <= set(public_modules())


def test_every_public_object_and_parameter_is_documented(gaps):
    missing = sorted(set(gaps) - PENDING)
    assert not missing, (
        f"{len(missing)} docstring gap(s); 'name' = no docstring, 'name:param' = parameter not named "
        "in the docstring (class parameters: class or __init__ docstring):\n  " + "\n  ".join(missing)
    )


def test_pending_list_only_holds_real_gaps(gaps):
    fixed = sorted(PENDING - set(gaps))
    assert not fixed, "no longer gaps, delete them from PENDING in tests/test_docstrings.py:\n  " + "\n  ".join(fixed)


def test_checker_catches_gaps():
    def documented(alpha, beta=1, *args, gamma=2, **kwargs):
        """Uses ``alpha`` and beta; gamma too."""

    def partly(alpha, betamax):
        """Only alpha (``beta`` is another word)."""

    assert [p for p in _named_params(documented) if not _mentions(inspect.getdoc(documented), p)] == []
    assert [p for p in _named_params(partly) if not _mentions(inspect.getdoc(partly), p)] == ["betamax"]
