"""A saved Recommender folder (issue 19, items 1 and 6): every file is covered by a digest
(``checksums.json``, metadata included), every field of ``metadata.json`` is validated against
the tensor files, each failure is a CheckpointError naming the file and the field; serving from
many threads gives the serial results; two processes fitting into one ``--out`` never mix runs."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from graphkit import CheckpointError, ConfigError
from graphkit.recommender import FORMAT_VERSION, Recommender

ROOT = Path(__file__).resolve().parents[1]
FILES = ("weights.safetensors", "embeddings.safetensors", "interactions.safetensors")

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- helpers
def small_frame(seed=0, n_users=12, n_items=15, n=70):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user": [f"u{u}" for u in rng.integers(0, n_users, n)],
                         "item": [f"i{i}" for i in rng.integers(0, n_items, n)]})


@pytest.fixture(scope="module")
def fitted():
    return Recommender("lightgcn", epochs=1, embedding_dim=8, num_layers=1, progress=False).fit(small_frame())


@pytest.fixture()
def folder(fitted, tmp_path):
    return fitted.save(tmp_path / "m")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def canonical(meta) -> str:
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_meta(path: Path) -> dict:
    return json.loads((path / "metadata.json").read_text())


def reseal(path: Path, meta: Optional[dict] = None, metadata_digest: bool = True) -> None:
    """What an editor who recomputes every digest does: the tensor files' sha256 in
    metadata.json and checksums.json, and (unless ``metadata_digest=False``) metadata's own."""
    meta = read_meta(path) if meta is None else meta
    meta["sha256"] = {n: sha(path / n) for n in FILES}
    (path / "metadata.json").write_text(json.dumps(meta, indent=1))
    sums = json.loads((path / "checksums.json").read_text())
    sums["sha256"].update(meta["sha256"])
    if metadata_digest:
        sums["sha256"]["metadata.json"] = canonical(meta)
    (path / "checksums.json").write_text(json.dumps(sums))


def edit_meta(path: Path, change) -> None:
    meta = read_meta(path)
    change(meta)
    reseal(path, meta)


def edit_tensors(path: Path, name: str, change) -> None:
    tensors = load_file(str(path / name))
    change(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / name))
    reseal(path)


def load_error(path: Path, file: str, field: Optional[str] = None) -> str:
    with pytest.raises(CheckpointError) as info:
        Recommender.load(path)
    msg = str(info.value)
    assert str(path / file) in msg, msg
    if field is not None:
        assert f"field {field!r}" in msg, msg
    assert "Traceback" not in msg
    return msg


# ----------------------------------------------------------------------------- layout and digests
def test_save_writes_a_checksum_manifest_over_every_file(fitted, folder):
    assert FORMAT_VERSION == 3  # written only with folded-in users (tests/test_fold_in.py); 2 otherwise
    assert sorted(os.listdir(folder)) == ["checksums.json", "embeddings.safetensors", "interactions.safetensors",
                                          "metadata.json", "weights.safetensors"]
    meta = read_meta(folder)
    sums = json.loads((folder / "checksums.json").read_text())
    assert meta["format_version"] == 2 and sums["format_version"] == 2
    assert sums["sha256"] == {**{n: sha(folder / n) for n in FILES}, "metadata.json": canonical(meta)}
    back = Recommender.load(folder)
    pd.testing.assert_frame_equal(back.recommend(None, k=5), fitted.recommend(None, k=5))


def test_a_metadata_edit_is_caught_by_its_digest_alone(folder):
    """Swapping two user ids would serve one user another's list; the tensor files' digests are
    recomputed, so only metadata.json's own digest can catch it."""
    meta = read_meta(folder)
    values = meta["user_ids"]["values"]
    values[0], values[1] = values[1], values[0]
    reseal(folder, meta, metadata_digest=False)
    msg = load_error(folder, "metadata.json")
    assert "sha256 differs from checksums.json" in msg
    assert not any(n in msg for n in FILES), msg


def test_reformatting_metadata_keeps_its_digest(fitted, folder):
    meta = read_meta(folder)
    (folder / "metadata.json").write_text(json.dumps(meta, indent=4, sort_keys=True))
    Recommender.load(folder)


def test_a_corrupted_tensor_file_is_named(folder):
    with open(folder / "embeddings.safetensors", "r+b") as fh:
        fh.seek(-4, os.SEEK_END)
        fh.write(b"\x00\x01\x02\x03")
    msg = load_error(folder, "embeddings.safetensors")
    assert "sha256" in msg


def test_missing_manifest_and_manifest_without_a_digest(folder):
    sums = json.loads((folder / "checksums.json").read_text())
    del sums["sha256"]["metadata.json"]
    (folder / "checksums.json").write_text(json.dumps(sums))
    load_error(folder, "checksums.json", "sha256")
    (folder / "checksums.json").unlink()
    load_error(folder, "checksums.json")


def test_a_consistent_forgery_is_not_detectable(fitted, folder):
    """The digests detect corruption and casual edits, not forgery: an id swap with every digest
    recomputed loads (documented in docs/recommender.md)."""
    meta = read_meta(folder)
    values = meta["user_ids"]["values"]
    a, b = values[0], values[1]
    values[0], values[1] = b, a
    reseal(folder, meta)
    back = Recommender.load(folder)
    mine = fitted.recommend([a], k=5)
    pd.testing.assert_frame_equal(back.recommend([b], k=5)[["item", "score"]], mine[["item", "score"]])


def test_format_1_folder_loads_with_a_warning_and_is_still_validated(fitted, folder):
    meta = read_meta(folder)
    meta["format_version"] = 1
    (folder / "checksums.json").unlink()
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="not protected"):
        back = Recommender.load(folder)
    pd.testing.assert_frame_equal(back.recommend(None, k=5), fitted.recommend(None, k=5))
    tensors = load_file(str(folder / "embeddings.safetensors"))
    tensors["user"][2, 3] = float("nan")
    save_file(tensors, str(folder / "embeddings.safetensors"))
    meta["sha256"]["embeddings.safetensors"] = sha(folder / "embeddings.safetensors")
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning):
        load_error(folder, "embeddings.safetensors", "user")


def test_a_manifest_is_verified_whatever_format_version_says(folder):
    meta = read_meta(folder)
    meta["format_version"] = 1  # a downgrade by an edit, checksums.json left in place
    (folder / "metadata.json").write_text(json.dumps(meta))
    load_error(folder, "metadata.json")


# ----------------------------------------------------------------------------- metadata fields
def _swap_first_ids(meta):
    meta["user_ids"]["values"][1] = meta["user_ids"]["values"][0]


def _set(path, value):
    def change(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _drop_last_user(meta):
    meta["user_ids"]["values"].pop()
    meta["num_users"] -= 1


def _both_dims(meta):
    meta["model"]["hparams"]["embedding_dim"] = 16
    meta["params"]["embedding_dim"] = 16


META_CASES = {
    "duplicate-id": (_swap_first_ids, "metadata.json", "user_ids", "duplicate"),
    "huge-num_users": (_set(("num_users",), 10 ** 15), "metadata.json", "user_ids", "num_users is 1000000000000000"),
    "negative-num_items": (_set(("num_items",), -3), "metadata.json", "num_items", ">= 1"),
    "bool-num_users": (_set(("num_users",), True), "metadata.json", "num_users", "integer"),
    "fewer-ids-than-rows": (_drop_last_user, "embeddings.safetensors", "user", "rows"),
    "unknown-hparam": (_set(("model", "hparams", "embeding_dim"), 8), "metadata.json", "model.hparams",
                       "'embeding_dim'"),
    "hparam-rejected": (_set(("model", "hparams", "init_std"), -1.0), "metadata.json", "model.hparams",
                        "init_std must be a positive"),
    "width-disagrees": (_both_dims, "weights.safetensors", "embedding.weight", "16)"),
    # built on the meta device first: 10**9 x (U + I) floats are never allocated
    "absurd-width": (lambda m: (_set(("model", "hparams", "embedding_dim"), 10 ** 9)(m),
                                _set(("params", "embedding_dim"), 10 ** 9)(m)),
                     "metadata.json", "model.hparams", "embedding_dim must be at most"),
    "params-disagree": (_set(("params", "embedding_dim"), 16), "metadata.json", "params", "embedding_dim"),
    "bad-device": (_set(("params", "device"), "gpu"), "metadata.json", "params", "device"),
    "unknown-param": (_set(("params", "epochz"), 3), "metadata.json", "params", "epochz"),
    "bad-column": (_set(("params", "user_col"), 5), "metadata.json", "params", "user_col"),
    "unregistered-model": (_set(("model", "name"), "os.system"), "metadata.json", "model.name", "registered"),
    "node-model": (lambda m: (_set(("model", "name"), "gcn")(m), _set(("params", "model"), "gcn")(m)),
                   "metadata.json", "model.name", "not a recommendation model"),
    "class-mismatch": (_set(("model", "class"), "UltraGCN"), "metadata.json", "model.class", "UltraGCN"),
    "malformed-typed-id": (_set(("user_ids", "values", 0), {"type": "decimal", "value": "x?"}), "metadata.json",
                           "user_ids", "malformed user id {'type': 'decimal'"),
    "malformed-typed-date": (_set(("user_ids", "values", 0), {"type": "date", "value": 7}), "metadata.json",
                             "user_ids", "malformed user id"),
    "unknown-id-tag": (_set(("item_ids", "values", 0), {"type": "pickle", "value": "x"}), "metadata.json",
                       "item_ids", "unknown id type tag"),
    "unhashable-id": (_set(("item_ids", "values", 0), {"type": "numpy", "dtype": "object", "value": [1, 2]}),
                      "metadata.json", "item_ids", None),
    "huge-string-dtype": (lambda m: m["user_ids"].update(dtype="<U10000000"), "metadata.json", "user_ids",
                          "wider"),
    "bad-dtype": (lambda m: m["user_ids"].update(dtype="<q9"), "metadata.json", "user_ids", None),
    "ids-not-a-list": (_set(("item_ids", "values"), "i1"), "metadata.json", "item_ids", "list"),
    "record-not-a-dict": (_set(("record",), [1, 2]), "metadata.json", "record", "object"),
    "history-ragged": (lambda m: m["history"]["rows"].append([1]), "metadata.json", "history", "row"),
    "unknown-field": (_set(("pickle",), "x"), "metadata.json", "pickle", "unknown field"),
    "bad-format-version": (_set(("format_version",), "2"), "metadata.json", "format_version", "reads"),
}


@pytest.mark.parametrize("case", sorted(META_CASES))
def test_every_metadata_field_is_validated(folder, case):
    change, file, field, text = META_CASES[case]
    edit_meta(folder, change)  # every digest recomputed: only the field checks can catch it
    msg = load_error(folder, file, field)
    if text is not None:
        assert text in msg, msg


def test_huge_num_users_is_refused_before_allocating(folder, monkeypatch):
    from graphkit.models import lightgcn

    def no_model(*args, **kwargs):
        raise AssertionError("model built")

    edit_meta(folder, _set(("num_users",), 10 ** 12))
    monkeypatch.setattr(lightgcn.LightGCN, "__init__", no_model)
    start = time.perf_counter()
    load_error(folder, "metadata.json", "user_ids")
    assert time.perf_counter() - start < 5


# ----------------------------------------------------------------------------- tensor files
def _nan_user(t):
    t["user"][0, 0] = float("nan")


def _inf_weight(t):
    t["embedding.weight"][3, 1] = float("inf")


def _wide_embeddings(t):
    t["user"] = torch.zeros(t["user"].shape[0], 16)
    t["item"] = torch.zeros(t["item"].shape[0], 16)


def _item_width(t):
    t["item"] = t["item"][:, :4].contiguous()


def _index_out_of_range(t):
    t["seen_indices"][-1] = 10 ** 6


def _negative_index(t):
    t["seen_indices"][0] = -1


def _indptr_decreasing(t):
    t["seen_indptr"][3] = t["seen_indptr"][4] + 1


def _indptr_short(t):
    t["seen_indptr"] = t["seen_indptr"][:-1]


def _mask_value(t):
    t["train_mask"][0] = 2


def _mask_length(t):
    t["train_mask"] = t["train_mask"][:-1]


def _nan_data(t):
    t["seen_data"][0] = float("nan")


def _weight_dtype(t):
    t["embedding.weight"] = t["embedding.weight"].double()


def _extra_tensor(t):
    t["evil"] = torch.zeros(1)


TENSOR_CASES = {
    "nan-embedding": ("embeddings.safetensors", _nan_user, "user", "NaN"),
    "embedding-width-vs-model": ("embeddings.safetensors", _wide_embeddings, "item", "model's are"),
    "item-width-vs-user-width": ("embeddings.safetensors", _item_width, "item", "width 4"),
    "inf-weight": ("weights.safetensors", _inf_weight, "embedding.weight", "non-finite"),
    "weight-dtype": ("weights.safetensors", _weight_dtype, "embedding.weight", "float64"),
    "extra-weight": ("weights.safetensors", _extra_tensor, "(tensor names)", "evil"),
    "index-out-of-range": ("interactions.safetensors", _index_out_of_range, "seen_indices", "outside"),
    "negative-index": ("interactions.safetensors", _negative_index, "seen_indices", "outside"),
    "indptr-decreasing": ("interactions.safetensors", _indptr_decreasing, "seen_indptr", "decrease"),
    "indptr-length": ("interactions.safetensors", _indptr_short, "seen_indptr", "num_users + 1"),
    "mask-value": ("interactions.safetensors", _mask_value, "train_mask", "0 or 1"),
    "mask-length": ("interactions.safetensors", _mask_length, "train_mask", "length"),
    "nan-data": ("interactions.safetensors", _nan_data, "seen_data", "NaN"),
}


@pytest.mark.parametrize("case", sorted(TENSOR_CASES))
def test_every_tensor_is_validated(folder, case):
    file, change, field, text = TENSOR_CASES[case]
    edit_tensors(folder, file, change)
    msg = load_error(folder, file, field)
    assert text in msg, msg


# ----------------------------------------------------------------------------- device
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_saved_cuda_device_loads_on_cpu_with_a_warning(fitted, folder):
    edit_meta(folder, _set(("params", "device"), "cuda"))
    with pytest.warns(UserWarning, match="not available here; loading on CPU"):
        back = Recommender.load(folder)
    assert back._user_emb.device.type == "cpu" and back.device == "cpu"
    pd.testing.assert_frame_equal(back.recommend(None, k=5), fitted.recommend(None, k=5))


def test_a_bad_device_argument_is_a_config_error(folder):
    with pytest.raises(ConfigError, match="device"):
        Recommender.load(folder, device="gpu")


# ----------------------------------------------------------------------------- concurrency
@pytest.fixture(scope="module")
def int_rec():
    """Integer ids, 4000 items of width 64: a first similar_items call builds a cache entry
    big enough for 8 threads to meet inside it."""
    rng = np.random.default_rng(3)
    n = 6000
    df = pd.DataFrame({"user": rng.integers(0, 3000, n) * 7 + 1, "item": rng.integers(0, 4000, n) * 3})
    return Recommender("lightgcn", epochs=0, embedding_dim=64, num_layers=1, progress=False,
                       validation=None).fit(df)


def _workload(rec, t, rounds=6):
    users = np.asarray(rec.user_index_)
    items = np.asarray(rec.item_index_)
    rng = np.random.default_rng(t)
    out = []
    for j in range(rounds):
        if t % 2:  # half the threads start with similar_items, half with recommend
            out.append(rec.similar_items(list(items[t:t + 6]), k=5))
        sub = users[rng.choice(users.shape[0], 40 + 10 * t, replace=False)]
        out.append(rec.recommend(list(sub), k=7))
        out.append(rec.recommend(list(sub[:5]), k=4, items=list(items[:50]), exclude_seen=(j % 2 == 0)))
        out.append(rec.predict_score(list(sub[:20]), list(items[:20])))
        out.append(rec.similar_items(list(items[t:t + 6]), k=5))
    return out


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        else:
            assert np.array_equal(x, y)


def _in_8_threads(fn):
    gate = threading.Barrier(8)

    def run(t):
        gate.wait()
        return fn(t)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(run, range(8)))


def test_recommend_from_8_threads_equals_the_serial_results(int_rec):
    """Many calls per thread over different user subsets, plus score and similar_items, from
    fresh serving caches each round (as after fit / load): exactly the serial results.  Before
    the fix, about one round in twelve raised KeyError(('normed_t', ...)) in similar_items."""
    rec = int_rec
    ue, ie = rec._user_emb, rec._item_emb
    serial = [_workload(rec, t) for t in range(8)]
    for _ in range(2):
        rec._set_serving(ue, ie)
        results = _in_8_threads(lambda t: _workload(rec, t))
        for t in range(8):
            _same(results[t], serial[t])
    short = [_workload(rec, t, rounds=1) for t in range(8)]
    for _ in range(120):
        rec._set_serving(ue, ie)  # empty caches: the first calls of 8 threads fill them together
        results = _in_8_threads(lambda t: _workload(rec, t, rounds=1))
        for t in range(8):
            _same(results[t], short[t])


def test_loads_never_mix_two_saves(fitted, tmp_path):
    """A load running while another thread keeps replacing the folder reads one save or the other."""
    other = Recommender("lightgcn", epochs=1, embedding_dim=8, num_layers=1, progress=False,
                        seed=5).fit(small_frame())
    path = tmp_path / "m"
    fitted.save(path)
    expected = [fitted.recommend(None, k=3), other.recommend(None, k=3)]
    stop = threading.Event()
    errors = []

    def saver():
        try:
            j = 0
            while not stop.is_set():
                (other if j % 2 == 0 else fitted).save(path)
                j += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=saver)
    thread.start()
    try:
        deadline = time.monotonic() + 3
        loads = 0
        while time.monotonic() < deadline:
            got = Recommender.load(path).recommend(None, k=3)
            assert any(got.equals(e) for e in expected)
            loads += 1
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors and loads > 0


FIT_ARGS = ("fit", "lightgcn", "--preset", "fast", "--epochs", "2", "--quiet", "--set", "eval_every=1", "--set",
            "batch_size=64", "--set", "embedding_dim=8")


def test_two_processes_fitting_into_one_out_folder_never_mix(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from graphkit.cli import main
    from graphkit.training import FitResult

    sys.path.insert(0, str(Path(__file__).parent))
    from test_bench import write_rec_folder

    data = write_rec_folder(tmp_path / "data" / "rec")
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    same = tmp_path / "same"
    procs = [subprocess.Popen([sys.executable, "-m", "graphkit.cli", *FIT_ARGS, "-d", str(data), "--seed", str(seed),
                               "--out", str(same)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (1, 2)]
    for seed in (1, 2):  # each run alone, in this process, meanwhile
        r = CliRunner().invoke(main, [*FIT_ARGS, "-d", str(data), "--seed", str(seed), "--out",
                                      str(tmp_path / f"alone{seed}")], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    alone = {s: FitResult.load(tmp_path / f"alone{s}") for s in (1, 2)}
    w1, w2 = alone[1].model.state_dict(), alone[2].model.state_dict()
    assert not all(torch.equal(w1[k], w2[k]) for k in w1)  # the two runs are distinguishable
    got = FitResult.load(same)  # verifies checksums.json: model, history and record of one save
    seed = got.record["seed"]
    assert seed in (1, 2)
    ref = alone[seed]
    assert got.metrics == ref.metrics
    steady = [c for c in ref.history.columns if "sec" not in c and "time" not in c]
    pd.testing.assert_frame_equal(got.history[steady], ref.history[steady])
    a, b = got.model.state_dict(), ref.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(os.listdir(same)) == ["checksums.json", "history.csv", "model.safetensors", "record.json"]
