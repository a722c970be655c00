"""Property-based fuzzing of every parser and constructor that reads outside data.

The contract under test: whatever the input, only graphkit's own exceptions
(:class:`graphkit.GraphkitError`) escape, and file parsers name the offending file (and the
line, where there is one).  Where a parser has a simple exact specification (the
LightGCN text format) the result is also compared with an oracle.

Generated ids stay below ~10^5 or above the parsers' id limit: ids in between are valid
and would make the loaders allocate arrays of that size, which is not what is fuzzed here.

The number of examples run per parser is collected in ``EXAMPLES`` and written to
``$GRAPHKIT_FUZZ_REPORT`` (JSON) when that variable is set; ``GRAPHKIT_FUZZ_SCALE=10``
multiplies every example budget for a deeper (slow) run.
"""
from __future__ import annotations

import collections
import contextlib
import decimal
import gzip
import json
import os
import pickle
import re
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import graphkit
from graphkit import CheckpointError, DataFormatError, GraphkitError
from graphkit.datasets.catgcn import CategoricalFeatures, load_catgcn
from graphkit.datasets.interactions import from_interactions
from graphkit.datasets.recommendation import MAX_ID, load_lightgcn_folder, read_lightgcn_file
from graphkit.datasets.safe_pickle import restricted_loads
from graphkit.graph import Graph

EXAMPLES: collections.Counter = collections.Counter()
_BASE = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None, print_blob=True)


def fuzz(n: int) -> settings:
    """Hypothesis settings of one fuzz test: ``n`` examples (times ``$GRAPHKIT_FUZZ_SCALE`` for
    deeper runs), no deadline (shared CPUs)."""
    return settings(_BASE, max_examples=max(1, int(n * float(os.environ.get("GRAPHKIT_FUZZ_SCALE", "1")))))


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    counts = dict(sorted(EXAMPLES.items()))
    print("\nfuzz examples per parser:", json.dumps(counts))
    target = os.environ.get("GRAPHKIT_FUZZ_REPORT")
    if target:
        Path(target).write_text(json.dumps(counts, indent=1) + "\n")


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="gk-fuzz-") as d:
        yield Path(d)


@contextlib.contextmanager
def fresh_dir(base: Path):
    d = Path(tempfile.mkdtemp(dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def only_graphkit_errors(fn, *args, **kwargs):
    """Run ``fn``; return (result, None) or (None, graphkit error).  Anything else fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(*args, **kwargs), None
        except GraphkitError as exc:
            # outcome classes for --hypothesis-show-statistics (message without paths and values)
            text = re.sub(r"(/|[A-Za-z]:\\)\S*", "<path>", str(exc).split(": ")[-1])
            event(f"{type(exc).__name__}: {re.sub(r'[(:].*', '', text)[:50]}")
            return None, exc
    event("accepted")
    return out


# ============================================================================ LightGCN text format
_WEIRD = [b"+5", b"-0", b"007", b"1.5", b"1e3", b"0x1f", "\u0663".encode(), "\u00b2".encode(), b"1_000", b"NaN",
          b"inf", b"+-1", b"--1", b"\x00", b"\x001", b"1\x00", b"abc", b"\xff\xfe", b"\x1c", b",", b"1,2", b"-"]
ids_small = st.integers(0, 10_000).map(lambda v: str(v).encode())
ids_huge = st.integers(MAX_ID + 1, 10**40).map(lambda v: str(v).encode())
ids_negative = st.integers(-(10**20), -1).map(lambda v: str(v).encode())
token = st.one_of(ids_small, ids_small, ids_small, ids_huge, ids_negative, st.sampled_from(_WEIRD),
                  st.binary(min_size=1, max_size=4))
line = st.tuples(st.lists(token, max_size=6), st.sampled_from([b" ", b"  ", b"\t", b" \t", b"\x0b", b"\x0c"]),
                 st.sampled_from([b"", b" ", b"\t", b"  ", b"\r"]), st.sampled_from([b"", b" ", b"\t"]))
text_file = st.one_of(
    st.binary(max_size=200),
    st.tuples(st.lists(line, max_size=8), st.sampled_from([b"\n", b"\r\n", b"\n\n"]), st.booleans()).map(
        lambda t: t[1].join(lead + sep.join(toks) + trail for toks, sep, trail, lead in t[0]) + (t[1] if t[2] else b"")),
)


def lightgcn_oracle(data: bytes):
    """(users, items, line_users) of a LightGCN file, or the 1-based line of the first bad token."""
    users, items, line_users = [], [], []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        vals = []
        for tok in raw.split():
            if not re.fullmatch(rb"[+-]?[0-9]+", tok) or not 0 <= int(tok) <= MAX_ID:
                return lineno
            vals.append(int(tok))
        if vals:
            line_users.append(vals[0])
            users += [vals[0]] * (len(vals) - 1)
            items += vals[1:]
    return users, items, line_users


@fuzz(400)
@given(data=text_file)
def test_lightgcn_file_parser_matches_its_oracle(workdir, data):
    EXAMPLES["lightgcn text file (read_lightgcn_file)"] += 1
    path = workdir / "train.txt"
    path.write_bytes(data)
    got, err = only_graphkit_errors(read_lightgcn_file, path)
    want = lightgcn_oracle(data)
    if isinstance(want, int):
        assert isinstance(err, DataFormatError), f"accepted a bad token on line {want}: {data!r}"
        assert err.line == want and f"line {want}" in str(err) and "train.txt" in str(err), (str(err), data)
    else:
        assert err is None, f"rejected valid input {data!r}: {err}"
        assert (got.users.tolist(), got.items.tolist(), got.line_users.tolist()) == want


small_line = st.lists(st.integers(0, 40), min_size=0, max_size=6).map(lambda v: " ".join(map(str, v)).encode())
small_file = st.lists(small_line, max_size=12).map(lambda ls: b"\n".join(ls))


@fuzz(60)
@given(train=st.one_of(small_file, text_file), test=st.one_of(small_file, text_file),
       valid=st.one_of(st.none(), small_file), val_ratio=st.sampled_from([0.0, 0.1, 0.5, 0.99]))
def test_lightgcn_folder_loader(workdir, train, test, valid, val_ratio):
    EXAMPLES["lightgcn folder (load_lightgcn_folder)"] += 1
    with fresh_dir(workdir) as d:
        (d / "train.txt").write_bytes(train)
        (d / "test.txt").write_bytes(test)
        if valid is not None:
            (d / "valid.txt").write_bytes(valid)
        ds, err = only_graphkit_errors(load_lightgcn_folder, d, val_ratio=val_ratio)
        if err is not None:
            assert isinstance(err, DataFormatError) and err.path and Path(err.path).parent == d, str(err)
        else:
            assert ds.train.shape == ds.valid.shape == ds.test.shape == (ds.num_users, ds.num_items)


# ============================================================================ CatGCN CSV format
BAD_CSV_TOKENS = ["", " ", "1.5", "\u00b2", "\u0663", "x", "1e3", "+3", "-1", "0x1", "NaN", "bogus", "\ufeff1", '"1"',
                  str(MAX_ID + 1), str(2**63), str(10**30), "99999999999999999999999", "TRAIN", "\x00",
                  "7", "100000", "0", "train", "val", "test"]  # (no valid ids near MAX_ID: see the module docstring)


@st.composite
def catgcn_folder(draw):
    """A valid CatGCN folder, then 0-3 mutations (bad tokens, huge ids, wrong row widths,
    headers, comments, blank lines, garbage or missing files)."""
    n = draw(st.integers(1, 10))
    node = st.integers(0, n - 1)
    files = {
        "user_edge.csv": [[str(draw(node)), str(draw(node))] for _ in range(draw(st.integers(0, 8)))],
        "user_field.csv": [[str(draw(node)), str(draw(st.integers(0, 3))), str(draw(st.integers(0, 5)))]
                           for _ in range(draw(st.integers(0, 10)))],
    }
    labelled = draw(st.lists(node, unique=True, max_size=n))
    classes = draw(st.integers(1, 3))
    files["user_label.csv"] = [[str(u), str(k % classes)] for k, u in enumerate(labelled)]
    if draw(st.booleans()):
        files["user_split.csv"] = [[str(u), draw(st.sampled_from(["train", "val", "test"]))] for u in labelled]
    headers = {"user_edge.csv": "uid1,uid2", "user_field.csv": "uid,field,value", "user_label.csv": "uid,label",
               "user_split.csv": "uid,split"}
    blobs = {}
    for name, rows in files.items():
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]) if rows else st.just(0))):  # token mutations
            r = draw(st.integers(0, len(rows) - 1))
            c = draw(st.integers(0, max(0, len(rows[r]) - 1)))
            kind = draw(st.sampled_from(["token", "token", "extra", "drop"]))
            if kind == "token" and rows[r]:
                rows[r][c] = draw(st.sampled_from(BAD_CSV_TOKENS))
            elif kind == "extra":
                rows[r] = rows[r] + ["1"]
            else:
                rows[r] = rows[r][:-1]
        lines = [",".join(r) for r in rows]
        if draw(st.booleans()):
            lines.insert(0, headers[name])
        for _ in range(draw(st.integers(0, 2))):
            lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", "# note", "   ", "", "a,b", ","])))
        blobs[name] = (draw(st.sampled_from(["\n", "\r\n"])).join(lines) + "\n").encode()
    if draw(st.integers(0, 4)) == 0:  # a whole file replaced or missing
        name = draw(st.sampled_from(sorted(blobs)))
        blobs[name] = draw(st.one_of(st.none(), st.binary(max_size=40), st.just(b"\xff\xfe\x00")))
    return blobs


@fuzz(250)
@given(blobs=catgcn_folder())
def test_catgcn_loader(workdir, blobs):
    EXAMPLES["CatGCN csv folder (load_catgcn)"] += 1
    with fresh_dir(workdir) as d:
        for name, content in blobs.items():
            if content is not None:
                (d / name).write_bytes(content)
        ds, err = only_graphkit_errors(load_catgcn, d)
        if err is None:
            assert ds.categorical.num_nodes == ds.num_nodes == ds.y.shape[0]
            return
        msg = str(err)
        assert str(d) in msg, msg  # the folder or the file is named
        if isinstance(err, DataFormatError) and err.line is not None:
            assert err.path and Path(err.path).name in blobs and f"line {err.line}" in msg, msg


@fuzz(100)
@given(n=st.lists(st.integers(-2, 12), max_size=12), f=st.lists(st.integers(-2, 5), max_size=12),
       v=st.lists(st.one_of(st.integers(-2, 9), st.integers(2**31, 2**62)), max_size=12),
       num_nodes=st.integers(0, 14), num_values=st.one_of(st.none(), st.lists(st.integers(-1, 12), max_size=6)))
def test_categorical_features_from_triples(n, f, v, num_nodes, num_values):
    EXAMPLES["CategoricalFeatures.from_triples"] += 1
    cat, err = only_graphkit_errors(CategoricalFeatures.from_triples, n, f, v, num_nodes, num_values)
    if err is None:
        assert cat.num_nodes == num_nodes and cat.indptr[-1] == cat.num_entries


# ============================================================================ interaction tables
id_values = st.one_of(
    st.integers(-3, 30), st.integers(-3, 30), st.sampled_from(["a", "b", "c", "", "é"]),
    st.floats(allow_nan=True, allow_infinity=True), st.none(), st.booleans(), st.just(pd.NA), st.just(pd.NaT),
    st.tuples(st.integers(0, 2)), st.lists(st.integers(0, 2), max_size=2), st.dictionaries(st.text(max_size=1), st.integers(0, 1), max_size=1),
    st.binary(max_size=2), st.just(decimal.Decimal("1.5")), st.just(uuid.UUID(int=7)),
    st.integers(0, 10**6).map(lambda s: pd.Timestamp(s, unit="s")), st.just(pd.Timestamp(0, tz="UTC")),
    st.just(np.datetime64("NaT")), st.just(complex(1, 1)),
)
time_values = st.one_of(st.integers(0, 50), st.floats(allow_nan=True), st.none(), st.sampled_from(["x", "2020-01-01"]),
                        st.integers(0, 10**6).map(lambda s: pd.Timestamp(s, unit="s")), st.just(pd.Timestamp(0, tz="UTC")))


COLUMN_KINDS = {
    "int": st.integers(-3, 30),
    "str": st.sampled_from(["a", "b", "c", "", "é", "a b"]),
    "float": st.floats(-5, 5, allow_nan=False),
    "mixed": st.one_of(st.integers(0, 5), st.sampled_from(["a", "b"]), st.tuples(st.integers(0, 2)), st.booleans(),
                       st.binary(max_size=2), st.just(decimal.Decimal("1.5")), st.just(uuid.UUID(int=7)),
                       st.just(complex(1, 1))),
    "time": st.one_of(st.integers(0, 10**6).map(lambda s: pd.Timestamp(s, unit="s")), st.just(pd.Timestamp(0, tz="UTC"))),
    "any": id_values,
}


@st.composite
def frames(draw):
    """Mostly homogeneous columns (so that rows get past the missing-value checks), with
    a sprinkle of missing, unhashable and mixed-type cells; duplicate column names and
    odd indexes sometimes."""
    n = draw(st.integers(0, 14))
    cols = draw(st.lists(st.sampled_from(["user", "item", "t", "w", "user", "other"]), min_size=0, max_size=5))
    if draw(st.integers(0, 2)) > 0:
        cols = list(dict.fromkeys(cols))
        cols += [c for c in ("user", "item") if c not in cols and draw(st.integers(0, 3)) > 0]
    data = []
    for c in cols:
        if c == "w":
            values = st.one_of(st.integers(-1, 3), st.floats(allow_nan=True), st.none(), st.just("1"))
        else:
            values = COLUMN_KINDS[draw(st.sampled_from(["time", "int", "float"] if c == "t" else list(COLUMN_KINDS)))]
        col = [draw(values) for _ in range(n)]
        if n and draw(st.integers(0, 4)) == 0:  # one odd cell
            col[draw(st.integers(0, n - 1))] = draw(id_values)
        data.append(col)
    rows = [list(r) for r in zip(*data)] if cols else []
    df = (pd.DataFrame.from_records(rows, columns=cols) if rows
          else pd.DataFrame({c: pd.Series([], dtype=object) for c in dict.fromkeys(cols)}))
    if draw(st.integers(0, 3)) == 0 and len(df):
        df.index = pd.Index(draw(st.lists(id_values, min_size=len(df), max_size=len(df))), dtype=object)
    return df


@fuzz(250)
@given(df=st.one_of(frames(), frames(), frames(), frames(),
                    st.sampled_from([None, [], {"user": [1]}, np.zeros((2, 2)), "user,item"])),
       split=st.sampled_from(["random", "random", "temporal", "temporal", "leave-last-out", "leave-last-out", "bogus"]),
       time_col=st.sampled_from([None, "t", "t", "t", "user"]),
       val_ratio=st.sampled_from([0.0, 0.1, 0.1, 0.1, 0.5, 0.5, 1.0, -0.1, float("nan")]), group=st.booleans())
def test_from_interactions(df, split, time_col, val_ratio, group):
    EXAMPLES["interaction DataFrame (datasets.from_interactions)"] += 1
    ds, err = only_graphkit_errors(from_interactions, df, time_col=time_col, split=split, val_ratio=val_ratio,
                                   test_ratio=0.2, group_by_user=group)
    if err is None:
        assert ds.train.nnz + ds.valid.nnz + ds.test.nnz <= len(df)
        assert ds.train.multiply(ds.test).nnz == 0


@fuzz(60)
@given(df=st.one_of(frames(), frames(), frames(), st.sampled_from([None, np.zeros((2, 2))])),
       weight_col=st.sampled_from([None, "w", "t"]),
       time_col=st.sampled_from([None, "t"]), duplicates=st.sampled_from(["count", "drop", "error"]),
       validation=st.sampled_from([None, 0.0, 0.5]))
def test_recommender_fit_on_random_frames(df, weight_col, time_col, duplicates, validation):
    EXAMPLES["interaction DataFrame (Recommender.fit)"] += 1
    if weight_col == time_col and weight_col is not None:
        weight_col = None
    rec, err = only_graphkit_errors(
        lambda: graphkit.Recommender(weight_col=weight_col, time_col=time_col, duplicates=duplicates,
                                     validation=validation, epochs=0, embedding_dim=4).fit(df))
    if err is None:
        out, err2 = only_graphkit_errors(rec.recommend, None, k=3)
        assert err2 is None and len(out) <= 3 * rec.n_users_


# ============================================================================ Graph constructors
DTYPES = ["int64", "int64", "int32", "uint64", "float64", "float32", "bool", "object", "str", "complex", "list", "tensor"]


@st.composite
def id_array(draw, length, allow_huge):
    """An array of ``length`` ids (sometimes another shape), in a random dtype/container,
    mostly small valid ids with some negative, fractional, NaN/inf or huge values."""
    shape = (length,) if draw(st.integers(0, 5)) else draw(st.sampled_from([(), (length, 1), (2, length), (length + 1,)]))
    size = int(np.prod(shape)) if shape else 1
    small = st.integers(0, 12)
    odd = st.one_of(st.integers(-3, -1), st.integers(2**40, 2**63 - 1) if allow_huge else st.integers(13, 40))
    vals = [draw(small) if draw(st.integers(0, 9)) else draw(odd) for _ in range(size)]
    kind = draw(st.sampled_from(DTYPES))
    if kind in ("float64", "float32", "complex"):
        vals = [float(v) if draw(st.integers(0, 6)) else draw(st.sampled_from([0.5, float("nan"), float("inf"), -0.0]))
                for v in vals]
    if kind == "list":
        return np.array(vals, dtype=object).reshape(shape).tolist()
    if kind == "object":
        return np.array(vals[:-1] + [None] if vals and not draw(st.integers(0, 3)) else vals, dtype=object).reshape(shape)
    if kind == "str":
        return np.array([str(v) for v in vals]).reshape(shape)
    if kind == "tensor":
        return torch.tensor(np.array([v % 50 for v in vals], dtype=np.int64).reshape(shape))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.array(vals, dtype=object).astype(kind).reshape(shape)
        except (OverflowError, ValueError, TypeError):
            return np.zeros(shape, dtype=kind)


num_nodes_st = st.one_of(st.none(), st.none(), st.integers(-2, 25), st.integers(10, 25), st.just(2.5), st.just(True),
                         st.just("7"), st.just(np.int64(30)), st.just(10**30), st.just(float("nan")))


@fuzz(250)
@given(data=st.data(), length=st.integers(0, 8), num_nodes=num_nodes_st, coalesce=st.booleans(),
       which=st.sampled_from(["coo", "edge_index", "user_item", "csr"]), weighted=st.booleans())
def test_graph_builders(data, length, num_nodes, coalesce, which, weighted):
    EXAMPLES[f"Graph.{'from_' + which if which != 'csr' else '__init__'}"] += 1
    huge = num_nodes is not None  # inferred node counts come from the ids: keep them small (module docstring)
    row = data.draw(id_array(length, huge))
    col = data.draw(id_array(length, huge))
    w = None
    if weighted:
        w = data.draw(st.one_of(id_array(length, False), st.lists(st.floats(allow_nan=True), min_size=length,
                                                                  max_size=length).map(np.array)))
    if which == "coo":
        fn = lambda: Graph.from_coo(row, col, num_nodes, w, coalesce=coalesce)  # noqa: E731
    elif which == "edge_index":
        ei = row if data.draw(st.integers(0, 3)) == 0 else _stack(row, col)
        fn = lambda: Graph.from_edge_index(ei, num_nodes, w, coalesce=coalesce)  # noqa: E731
    elif which == "user_item":
        n_items = data.draw(st.one_of(st.none(), st.integers(-1, 15))) if num_nodes is not None else None
        fn = lambda: Graph.from_user_item(row, col, num_nodes, n_items, w)  # noqa: E731
    else:
        indptr = row
        if data.draw(st.booleans()):  # a mostly valid CSR: indptr from counts
            counts = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=0, max_size=6)))
            indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            if data.draw(st.booleans()) and indptr.size > 1:
                indptr[data.draw(st.integers(0, indptr.size - 1))] += data.draw(st.sampled_from([-2, -1, 1, 5]))
        fn = lambda: Graph(indptr, col, w, num_nodes=num_nodes)  # noqa: E731
    g, err = only_graphkit_errors(fn)
    if err is None:
        assert g.indptr.shape[0] == g.num_nodes + 1 and int(g.indptr[-1]) == g.num_edges
        assert bool((g.indptr[1:] >= g.indptr[:-1]).all())
        if g.num_edges:
            assert 0 <= int(g.indices.min()) and int(g.indices.max()) < g.num_nodes


def _stack(row, col):
    try:
        return np.stack([np.asarray(row), np.asarray(col)])
    except (ValueError, TypeError):
        return row


@fuzz(80)
@given(shape=st.tuples(st.integers(0, 6), st.integers(0, 6)), density=st.floats(0, 1),
       dtype=st.sampled_from(["float32", "float64", "int64", "bool", "complex128", "int8"]),
       fmt=st.sampled_from(["csr", "csc", "coo", "lil", "dok", "dense", "none"]),
       poison=st.sampled_from([None, np.nan, np.inf, -1.0]), split=st.one_of(st.none(), st.integers(-1, 7)))
def test_graph_from_scipy(shape, density, dtype, fmt, poison, split):
    EXAMPLES["Graph.from_scipy"] += 1
    mat = sp.random(*shape, density=density, format="csr", random_state=0, dtype=np.float64)
    if poison is not None and mat.nnz:
        mat.data[0] = poison
    mat = mat.astype(dtype)
    obj = {"dense": mat.toarray(), "none": None}.get(fmt, None) if fmt in ("dense", "none") else mat.asformat(fmt)
    kw = {} if split is None else {"num_users": split, "num_items": shape[0] - split}
    g, err = only_graphkit_errors(Graph.from_scipy, obj, **kw)
    if err is None:  # square: the adjacency; rectangular: the bipartite user x item graph
        if shape[0] == shape[1]:
            assert g.num_nodes == shape[0]
        else:
            assert (g.num_users, g.num_items, g.num_nodes) == (shape[0], shape[1], shape[0] + shape[1])


def test_graph_with_an_absurd_inferred_node_count_is_a_graph_error():
    EXAMPLES["Graph.from_coo"] += 2
    for big in (2**40, 2**62):
        with pytest.raises(graphkit.GraphError, match="nodes"):
            Graph.from_coo([0], [big])


# ============================================================================ Planetoid pickles
@fuzz(300)
@given(data=st.one_of(st.binary(max_size=120), st.binary(max_size=40).map(lambda b: b"\x80\x02" + b),
                      st.binary(max_size=40).map(lambda b: pickle.dumps([1, 2.0, "x"], protocol=2)[:-1] + b)))
def test_restricted_unpickler_on_random_bytes(data):
    EXAMPLES["pickle bytes (restricted_loads)"] += 1
    _, err = only_graphkit_errors(restricted_loads, data, "ind.cora.x")
    assert err is None or (isinstance(err, DataFormatError) and "ind.cora.x" in str(err))


def _pk(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


@st.composite
def planetoid_files(draw):
    n_all, n_test, F, C = draw(st.integers(0, 6)), draw(st.integers(0, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))

    def mat(rows, cols):
        kind = draw(st.sampled_from(["sparse"] * 6 + ["dense"] * 3 + ["list", "3d", "bad-shape", "str"]))
        rows, cols = (rows, cols) if kind != "bad-shape" else (rows + 1, cols + draw(st.integers(0, 2)))
        a = (np.arange(rows * cols) % 2).reshape(rows, cols).astype(np.float32)
        return {"sparse": sp.csr_matrix(a), "dense": a, "bad-shape": a, "list": a.tolist(),
                "3d": a.reshape(1, rows, cols), "str": "x"}[kind]

    n_x = draw(st.integers(0, n_all))
    test_ids = draw(st.lists(st.integers(n_all, n_all + 6) if draw(st.integers(0, 4)) else
                             st.one_of(st.integers(n_all, n_all + 6), st.integers(-2, 10**12)),
                             min_size=n_test, max_size=n_test, unique=True))
    ids = (st.integers(0, max(0, n_all + n_test - 1)) if draw(st.integers(0, 3)) else
           st.one_of(st.integers(-1, n_all + n_test + 2), st.just(10**15), st.just("a"), st.just(1.5)))
    graph = draw(st.one_of(
        st.dictionaries(ids, st.lists(ids, max_size=4), max_size=n_all + n_test + 1),
        st.just([1, 2]), st.just(None)))
    index_text = "\n".join(map(str, test_ids)) + draw(st.sampled_from(["", "\n", "\n", "\n\n", "\nx\n", "\n-1\n"]))
    return {"x": _pk(mat(n_x, F)), "y": _pk(mat(n_x, C)), "allx": _pk(mat(n_all, F)), "ally": _pk(mat(n_all, C)),
            "tx": _pk(mat(n_test, F)), "ty": _pk(mat(n_test, C)), "graph": _pk(graph),
            "test.index": index_text.encode()}


@fuzz(120)
@given(files=planetoid_files(), garbage=st.one_of(st.none(), st.none(), st.none(), st.tuples(st.sampled_from(
    ["x", "y", "tx", "ty", "allx", "ally", "graph", "test.index"]), st.binary(max_size=30))))
def test_planetoid_reader(workdir, files, garbage):
    from graphkit.datasets.planetoid import read_planetoid

    EXAMPLES["Planetoid raw files (read_planetoid)"] += 1
    if garbage is not None:
        files = {**files, garbage[0]: garbage[1]}
    with fresh_dir(workdir) as d:
        paths = {}
        for part, blob in files.items():
            paths[f"ind.cora.{part}"] = d / f"ind.cora.{part}"
            paths[f"ind.cora.{part}"].write_bytes(blob)
        raw, err = only_graphkit_errors(read_planetoid, "cora", paths)
        if err is not None:
            assert isinstance(err, DataFormatError) and err.path and Path(err.path).name.startswith("ind.cora."), str(err)
            assert Path(err.path).name in str(err)
        else:
            assert raw.x.shape[0] == raw.y.shape[0]
            if raw.edge_index.size:
                assert 0 <= raw.edge_index.min() and raw.edge_index.max() < raw.x.shape[0]


# ============================================================================ OGB custom folders
OGB_FILES = ["raw/edge.csv.gz", "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz", "raw/node-feat.csv.gz",
             "raw/node-label.csv.gz", "split/random/train.csv.gz", "split/random/valid.csv.gz", "split/random/test.csv.gz"]


def write_ogbn(folder: Path, num_nodes: int = 8):
    src = np.arange(num_nodes)
    rows = {
        "raw/edge.csv.gz": np.stack([src, (src + 1) % num_nodes], 1),
        "raw/num-node-list.csv.gz": [[num_nodes]],
        "raw/num-edge-list.csv.gz": [[num_nodes]],
        "raw/node-feat.csv.gz": (np.arange(num_nodes * 3).reshape(num_nodes, 3) / 7).round(3),
        "raw/node-label.csv.gz": (np.arange(num_nodes) % 3)[:, None],
        "split/random/train.csv.gz": np.arange(0, 4)[:, None],
        "split/random/valid.csv.gz": np.arange(4, 6)[:, None],
        "split/random/test.csv.gz": np.arange(6, 8)[:, None],
    }
    for rel, table in rows.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as fh:
            fh.writelines(",".join(str(v) for v in row) + "\n" for row in table)
    (folder / "RELEASE_v1.txt").write_text("fuzz dataset, v1\n")
    return {
        "dir_path": str(folder), "version": 1, "download_name": "fuzz", "url": "https://example.invalid/fuzz.zip",
        "num tasks": 1, "task type": "multiclass classification", "eval metric": "acc", "num classes": 3,
        "is hetero": "False", "binary": "False", "add_inverse_edge": "False", "has_node_attr": "True",
        "has_edge_attr": "False", "split": "random", "additional node files": "None", "additional edge files": "None",
    }


CORRUPTIONS = ["delete", "random-bytes", "truncated-gzip", "empty-gzip", "empty-file", "extra-column", "missing-column",
               "text", "negative", "huge", "nan", "float", "fewer-rows", "more-rows", "header", "bad-gzip-crc"]


def corrupt(path: Path, how: str, data: st.DataObject) -> None:
    if how == "delete":
        path.unlink()
        return
    if how in ("random-bytes", "empty-file"):
        path.write_bytes(b"" if how == "empty-file" else data.draw(st.binary(min_size=1, max_size=40)))
        return
    blob = path.read_bytes()
    if how == "truncated-gzip":
        path.write_bytes(blob[: data.draw(st.integers(1, max(1, len(blob) - 1)))])
        return
    if how == "bad-gzip-crc":
        path.write_bytes(blob[:-8] + bytes(8))
        return
    rows = [r.split(",") for r in gzip.decompress(blob).decode().splitlines()]
    i = data.draw(st.integers(0, max(0, len(rows) - 1)))
    if how == "empty-gzip":
        rows = []
    elif how == "extra-column":
        rows = [r + ["1"] for r in rows]
    elif how == "missing-column":
        rows = [r[:-1] for r in rows]
    elif how in ("text", "negative", "huge", "nan", "float") and rows:
        rows[i][-1] = {"text": "abc", "negative": "-3", "huge": str(10**20), "nan": "nan", "float": "1.5"}[how]
    elif how == "fewer-rows":
        rows = rows[:-1]
    elif how == "more-rows":
        rows = rows + [rows[-1]] if rows else [["1"]]
    elif how == "header":
        rows = [["a"] * len(rows[0] if rows else [1])] + rows
    path.write_bytes(gzip.compress(("\n".join(",".join(r) for r in rows) + ("\n" if rows else "")).encode()))


@pytest.fixture(scope="module")
def ogb_env(workdir):
    pytest.importorskip("ogb")
    old = os.environ.get("GRAPHKIT_CACHE")
    os.environ["GRAPHKIT_CACHE"] = str(workdir / "cache")
    yield
    if old is None:
        os.environ.pop("GRAPHKIT_CACHE", None)
    else:
        os.environ["GRAPHKIT_CACHE"] = old


@fuzz(40)
@given(target=st.sampled_from(OGB_FILES + ["RELEASE_v1.txt", "<folder>"]), how=st.sampled_from(CORRUPTIONS),
       data=st.data())
def test_ogb_custom_folder(workdir, ogb_env, target, how, data):
    from graphkit.datasets import load_ogb_node

    EXAMPLES["OGB custom folder (load_ogb_node)"] += 1
    with fresh_dir(workdir) as d:
        folder = d / "ogbn_fuzz"
        md = write_ogbn(folder)
        if target == "<folder>":
            shutil.rmtree(folder)
        elif target == "RELEASE_v1.txt":
            (folder / target).unlink()
        else:
            corrupt(folder / target, how, data)
        ds, err = only_graphkit_errors(load_ogb_node, "ogbn-fuzz", meta_dict=md, download=False)
        if err is None:
            assert ds.num_nodes == ds.y.shape[0] and (ds.x is None or ds.x.shape[0] == ds.num_nodes)
            for idx in (ds.train_idx, ds.val_idx, ds.test_idx):
                assert idx.numel() == 0 or (0 <= int(idx.min()) and int(idx.max()) < ds.num_nodes)
            return
        msg = str(err)
        named = Path(target).name if target != "<folder>" else str(folder)
        assert named in msg or (target != "<folder>" and str(folder) in msg and how in ("fewer-rows", "more-rows")), msg


# ============================================================================ training checkpoints
@pytest.fixture(scope="module")
def ckpt_run(workdir):
    """A finished 2-epoch run with checkpointing: (dataset, fit kwargs, checkpoint bytes)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_training import planted_dataset

    ds = planted_dataset(seed=4, U=30, I=40)
    kw = dict(embedding_dim=4, num_layers=1, epochs=2, eval_every=1, batch_size=32, lr=0.05, progress=False,
              patience=0, checkpoint_every=1, seed=1)
    folder = workdir / "ckpt-base"
    graphkit.fit("lightgcn", ds, checkpoint_dir=str(folder), **kw)
    return _Run(ds, kw, (folder / "checkpoint.safetensors").read_bytes())


class _Run(tuple):
    """(dataset, fit kwargs, checkpoint bytes), with a short repr for hypothesis reports."""

    def __new__(cls, *items):
        return super().__new__(cls, items)

    def __repr__(self) -> str:
        return f"<checkpointed run, {len(self[2])} checkpoint bytes>"


@fuzz(200)
@given(data=st.data())
def test_checkpoint_byte_corruption(workdir, ckpt_run, data):
    from graphkit.training.checkpoint import load_checkpoint

    EXAMPLES["training checkpoint bytes (load_checkpoint)"] += 1
    _, _, good = ckpt_run
    blob = bytearray(good)
    how = data.draw(st.sampled_from(["flip", "flip", "truncate", "insert", "header-length"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 3))):
            blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif how == "insert":
        at = data.draw(st.integers(0, len(blob)))
        blob[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        blob[:8] = data.draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
    path = workdir / "ckpt-mutated.safetensors"
    path.write_bytes(bytes(blob))
    ck, err = only_graphkit_errors(load_checkpoint, path)
    if err is not None:
        assert isinstance(err, graphkit.CheckpointError) and path.name in str(err)
    else:  # only a change that leaves the content equal (e.g. JSON whitespace) may load
        base_path = workdir / "ckpt-good.safetensors"
        base_path.write_bytes(good)
        base = load_checkpoint(base_path)
        assert ck.meta == base.meta and ck.model_state.keys() == base.model_state.keys()
        assert all(torch.equal(ck.model_state[k], base.model_state[k]) for k in base.model_state)


def _leaves(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, prefix + (k,))
    elif isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            yield from _leaves(v, prefix + (i,))
    yield prefix


json_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
                        st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


@fuzz(25)
@given(data=st.data())
def test_forged_checkpoint_metadata_fails_cleanly_on_resume(workdir, ckpt_run, data):
    """A *consistent* forgery (the sha256 recomputed after editing one JSON value): resuming
    either works or raises a graphkit error, never an exception from deep inside training."""
    from safetensors import safe_open
    from safetensors.torch import save

    from graphkit.training.checkpoint import _digest

    EXAMPLES["training checkpoint metadata (fit resume=True)"] += 1
    ds, kw, good = ckpt_run
    with fresh_dir(workdir) as d:
        (d / "checkpoint.safetensors").write_bytes(good)
        with safe_open(str(d / "checkpoint.safetensors"), framework="pt") as fh:
            meta = json.loads(fh.metadata()["graphkit"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        meta.pop("sha256")
        paths = [p for p in _leaves(meta) if p]
        target = data.draw(st.sampled_from(paths))
        node = meta
        for k in target[:-1]:
            node = node[k]
        node[target[-1]] = data.draw(json_values)
        meta["sha256"] = _digest(tensors, meta)
        (d / "checkpoint.safetensors").write_bytes(save(tensors, metadata={"graphkit": json.dumps(meta)}))
        res, err = only_graphkit_errors(graphkit.fit, "lightgcn", ds, checkpoint_dir=str(d), resume=True, **kw)
        if err is None:
            assert res.record["epochs_run"] >= 1 and set(res.metrics) == {"recall@20", "ndcg@20"}


def test_rng_state_with_an_out_of_range_position_is_a_checkpoint_error():
    """Found by the forged-checkpoint fuzzer (rng.numpy.pos = 2**31): numpy's set_state raised a
    raw OverflowError from inside resume."""
    from graphkit.training.checkpoint import capture_rng_state, restore_rng_state

    tensors, js = capture_rng_state()
    js = {**js, "numpy": {**js["numpy"], "pos": 2 ** 31}}
    with pytest.raises(CheckpointError, match="malformed random-number-generator state"):
        restore_rng_state(tensors, js)
