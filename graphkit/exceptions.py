"""The graphkit exception hierarchy.

Every error graphkit raises on purpose derives from :class:`GraphkitError`, so a
pipeline can catch ``graphkit.GraphkitError`` and know it is a problem with the
input it handed over, not a bug.  Each class also derives from the matching
built-in (``ValueError``, ``FileNotFoundError``, ...) so existing ``except``
clauses keep working.

::

    GraphkitError
    ├── GraphError            (ValueError)        bad graph structure / ids / weights
    ├── ConfigError           (ValueError)        bad hyper-parameter or argument
    │   └── NotFittedError    (AttributeError)    an estimator used before fit()
    ├── DatasetError                              anything about datasets
    │   ├── DataFormatError   (ValueError)        a file or frame that does not parse
    │   ├── DataNotFoundError (FileNotFoundError) files missing and no download possible
    │   └── ChecksumError                         a file whose sha256 does not match
    ├── CheckpointError                           unreadable / incompatible checkpoint
    └── TrainingError         (RuntimeError)      e.g. a non-finite loss
"""
from __future__ import annotations

import os
from typing import Any, Optional


class GraphkitError(Exception):
    """Base class of every error graphkit raises deliberately."""


class GraphError(GraphkitError, ValueError):
    """A graph that is not well formed (ids out of range, bad shapes, NaN weights, ...)."""


class ConfigError(GraphkitError, ValueError):
    """An invalid argument or hyper-parameter."""


class NotFittedError(ConfigError, AttributeError):
    """An estimator (e.g. :class:`graphkit.Recommender`) was used before ``fit``."""


class DatasetError(GraphkitError):
    """Base class for dataset problems."""


class DataFormatError(DatasetError, ValueError):
    """Input data that does not follow its format.

    The message names the file, the line (1-based) and the field when they are
    known, plus what was expected and what was found.

    Args:
        message: what is wrong.
        path: the file (kept as ``.path``).
        line: the 1-based line number (``.line``).
        field: the column or field name (``.field``).
        expected: what the format requires (``.expected``).
        got: what was found (``.got``).
    """

    def __init__(
        self,
        message: str,
        *,
        path: Optional[os.PathLike | str] = None,
        line: Optional[int] = None,
        field: Optional[str] = None,
        expected: Any = None,
        got: Any = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        self.expected = expected
        self.got = got
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        text = message
        if expected is not None or got is not None:
            text += f" (expected {expected}, got {got!r})"
        if where:
            text = f"{', '.join(where)}: {text}"
        super().__init__(text)


class DataNotFoundError(DatasetError, FileNotFoundError):
    """Dataset files are missing and could not be downloaded."""


class ChecksumError(DatasetError):
    """A downloaded or local file does not have the expected sha256."""


class CheckpointError(GraphkitError):
    """A checkpoint or saved model that cannot be loaded."""


class TrainingError(GraphkitError, RuntimeError):
    """Training cannot continue (for example the loss became NaN/Inf)."""


__all__ = [
    "GraphkitError",
    "GraphError",
    "ConfigError",
    "NotFittedError",
    "DatasetError",
    "DataFormatError",
    "DataNotFoundError",
    "ChecksumError",
    "CheckpointError",
    "TrainingError",
]
