"""Raw ids: arrays of them, their lookup in the id maps, and their JSON encoding.

A :class:`~graphkit.recommender.Recommender` maps the raw user/item ids it is given (any
hashable values) to contiguous indices through ``pandas.Index`` objects (:func:`_make_index`,
:func:`_lookup`).  :meth:`~graphkit.recommender.Recommender.save` writes the id maps to
``metadata.json`` with their numpy dtype and element types kept (:func:`_encode_ids`,
:func:`_decode_ids`), so that a loaded model answers in exactly the ids it was fitted on.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import math
import uuid
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..exceptions import CheckpointError, ConfigError

_MAX_LISTED = 10  # ids quoted in an error message


def _listing(values: Sequence[Any], total: Optional[int] = None) -> str:
    """``'a', 'b', ... (and 7 more)`` for error messages."""
    vals = list(values)
    total = len(vals) if total is None else total
    shown = ", ".join(repr(v) for v in vals[:_MAX_LISTED])
    more = total - min(len(vals), _MAX_LISTED)
    return shown + (f" (and {more} more)" if more > 0 else "")


def _id_array(values: Any) -> np.ndarray:
    """A 1-D numpy array of raw ids from a list / array / Series / Index, or one id.

    Nothing is guessed: a ``list``, ``numpy.ndarray``, ``pandas.Series``/``Index`` or
    ``range`` is a collection of ids; anything else (a ``str``, an ``int``, a ``tuple``,
    ...) is one id, so tuple ids work.
    """
    import pandas as pd

    if isinstance(values, (pd.Series, pd.Index)):
        arr = values.to_numpy()
    elif isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ConfigError(f"ids must be given as a 1-D array, got shape {values.shape}")
        arr = values
    elif isinstance(values, (list, range)):
        arr = pd.Index(list(values), tupleize_cols=False).to_numpy()
    else:
        arr = np.empty(1, dtype=object)
        arr[0] = values
    return arr


def _lookup(index: Any, values: np.ndarray, what: str) -> np.ndarray:
    """Positions of ``values`` in ``index`` (-1 when absent), as int64."""
    import pandas as pd

    if values.shape[0] == 1:  # one id (the usual serving request): a hash lookup, no Index built
        # (pd.Index + get_indexer cost ~0.8 ms per call on gowalla's 30k users: half a single-user
        # recommend, benchmarks/bench_serving.py)
        try:
            pos = index.get_loc(values[0])
        except KeyError:
            return np.array([-1], dtype=np.int64)
        except TypeError as exc:
            raise ConfigError(f"{what} ids must be hashable values: {exc}") from None
        except Exception:  # an id the index cannot look up by get_loc (e.g. NaN-like): the general path
            pos = None
        if isinstance(pos, (int, np.integer)):
            return np.array([int(pos)], dtype=np.int64)
    try:
        target = pd.Index(values, tupleize_cols=False, dtype=object if values.dtype == object else None)
        return np.asarray(index.get_indexer(target), dtype=np.int64)
    except TypeError as exc:
        raise ConfigError(f"{what} ids must be hashable values: {exc}") from None


def _unique_keep_order(idx: np.ndarray) -> np.ndarray:
    _, first = np.unique(idx, return_index=True)
    return idx[np.sort(first)]

# ----------------------------------------------------------------------------- id encoding
def _encode_scalar(v: Any, what: str) -> Any:
    """One raw id as JSON: native JSON values as they are, anything else type-tagged."""
    if isinstance(v, np.generic):  # before float/str: np.float64 / np.str_ subclass them
        if isinstance(v, np.bool_):
            return {"type": "numpy", "dtype": "bool", "value": bool(v)}
        if isinstance(v, np.integer):
            return {"type": "numpy", "dtype": v.dtype.name, "value": int(v)}
        if isinstance(v, np.floating):
            return {"type": "numpy", "dtype": v.dtype.name, "value": _float_json(float(v))}
        if isinstance(v, np.str_):
            return {"type": "numpy", "dtype": "str_", "value": str(v)}
        if isinstance(v, np.datetime64):
            unit = np.datetime_data(v.dtype)[0]
            return {"type": "numpy", "dtype": f"datetime64[{unit}]", "value": int(v.astype(np.int64))}
        if isinstance(v, np.timedelta64):
            unit = np.datetime_data(v.dtype)[0]
            return {"type": "numpy", "dtype": f"timedelta64[{unit}]", "value": int(v.astype(np.int64))}
        if isinstance(v, np.bytes_):
            return {"type": "numpy", "dtype": "bytes_", "value": bytes(v).hex()}
    elif isinstance(v, bool) or v is None:
        return v
    elif isinstance(v, int):
        return v if type(v) is int else _unsupported(v, what)
    elif isinstance(v, float):
        if type(v) is not float:
            return _unsupported(v, what)
        return v if math.isfinite(v) else {"type": "float", "value": repr(v)}
    elif isinstance(v, str):
        return v if type(v) is str else _unsupported(v, what)
    elif isinstance(v, tuple):
        if type(v) is not tuple:  # namedtuples would come back as plain tuples
            return _unsupported(v, what)
        return {"type": "tuple", "items": [_encode_scalar(x, what) for x in v]}
    elif isinstance(v, frozenset):
        return {"type": "frozenset", "items": [_encode_scalar(x, what) for x in v]}
    elif isinstance(v, bytes):
        return {"type": "bytes", "value": v.hex()}
    elif isinstance(v, uuid.UUID):
        return {"type": "uuid", "value": str(v)}
    elif isinstance(v, decimal.Decimal):
        return {"type": "decimal", "value": str(v)}
    else:
        import pandas as pd

        if isinstance(v, pd.Timestamp):
            return {"type": "timestamp", "value": v.isoformat()}
        if isinstance(v, pd.Timedelta):
            return {"type": "timedelta", "value": int(v.value)}
        if type(v) is _dt.datetime:
            return {"type": "datetime", "value": v.isoformat()}
        if type(v) is _dt.date:
            return {"type": "date", "value": v.isoformat()}
    return _unsupported(v, what)


def _float_json(x: float) -> Any:
    return x if math.isfinite(x) else repr(x)


def _unsupported(v: Any, what: str) -> Any:
    raise CheckpointError(
        f"cannot save {what} id {v!r} of type {type(v).__module__}.{type(v).__qualname__}: saved ids must be "
        "str, int, float, bool, bytes, tuple/frozenset of those, uuid.UUID, decimal.Decimal, datetime/date, "
        "pandas Timestamp/Timedelta or numpy scalars (convert the ids, e.g. with .astype(str), before fit)"
    )


def _decode_scalar(obj: Any, what: str) -> Any:
    if not isinstance(obj, dict):
        if isinstance(obj, list):  # never written: lists are not hashable
            raise CheckpointError(f"malformed {what} id {obj!r} in metadata.json")
        return obj
    kind = obj.get("type")
    try:
        if kind == "numpy":
            dtype, value = obj["dtype"], obj["value"]
            if dtype == "str_":
                return np.str_(value)
            if dtype == "bytes_":
                return np.bytes_(bytes.fromhex(value))
            if dtype.startswith(("datetime64", "timedelta64")):
                return np.array(value, dtype=np.int64).view(dtype)[()]
            if dtype == "bool":
                return np.bool_(value)
            return np.dtype(dtype).type(float(value) if isinstance(value, str) else value)
        if kind == "float":
            return float(obj["value"])
        if kind == "tuple":
            return tuple(_decode_scalar(x, what) for x in obj["items"])
        if kind == "frozenset":
            return frozenset(_decode_scalar(x, what) for x in obj["items"])
        if kind == "bytes":
            return bytes.fromhex(obj["value"])
        if kind == "uuid":
            return uuid.UUID(obj["value"])
        if kind == "decimal":
            return decimal.Decimal(obj["value"])
        if kind == "timestamp":
            import pandas as pd

            return pd.Timestamp(obj["value"])
        if kind == "timedelta":
            import pandas as pd

            return pd.Timedelta(int(obj["value"]), unit="ns")
        if kind == "datetime":
            return _dt.datetime.fromisoformat(obj["value"])
        if kind == "date":
            return _dt.date.fromisoformat(obj["value"])
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # ArithmeticError: decimal.InvalidOperation
        raise CheckpointError(f"malformed {what} id {obj!r} in metadata.json ({exc})") from None
    raise CheckpointError(f"unknown id type tag {kind!r} for a {what} id in metadata.json")


def _encode_ids(ids: np.ndarray, what: str) -> Dict[str, Any]:
    """The id array of a :class:`Recommender` as JSON, its numpy dtype and element types kept."""
    kind = ids.dtype.kind
    if kind in "iub":
        return {"dtype": ids.dtype.str, "values": ids.tolist()}
    if kind == "f":
        return {"dtype": ids.dtype.str, "values": [_float_json(x) for x in ids.tolist()]}
    if kind in "mM":
        return {"dtype": ids.dtype.str, "values": ids.view(np.int64).tolist()}
    if kind == "U":
        return {"dtype": ids.dtype.str, "values": ids.tolist()}
    return {"dtype": "object", "values": [_encode_scalar(v, what) for v in ids.tolist()]}


def _decode_ids(obj: Any, what: str) -> np.ndarray:
    try:
        dtype, values = obj["dtype"], obj["values"]
    except (TypeError, KeyError):
        raise CheckpointError(f"metadata.json: malformed {what} id map") from None
    if dtype == "object":
        out = np.empty(len(values), dtype=object)
        for j, v in enumerate(values):
            out[j] = _decode_scalar(v, what)
        return out
    try:
        dt = np.dtype(dtype)
        if dt.kind in "mM":
            return np.asarray(values, dtype=np.int64).view(dt)
        if dt.kind == "f":
            return np.asarray([float(v) if isinstance(v, str) else v for v in values], dtype=dt)
        if dt.kind not in "iubU":
            raise TypeError(f"unsupported dtype {dtype}")
        return np.asarray(values, dtype=dt)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CheckpointError(f"metadata.json: malformed {what} id map ({exc})") from None


def _make_index(ids: np.ndarray, name: str) -> Any:
    import pandas as pd

    return pd.Index(ids, tupleize_cols=False, name=name, dtype=object if ids.dtype == object else None)
