"""graphkit.Recommender: raw ids in, top-k out, evaluation, warm start, save/load, bad input."""
import datetime as dt
import decimal
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphkit import CheckpointError, ConfigError, DataFormatError, GraphkitError
from graphkit.metrics import RANKING_METRICS, evaluate_embeddings
from graphkit.recommender import NotFittedError, Recommender, leave_last_out, temporal_split

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(embedding_dim=8, num_layers=2, batch_size=128, eval_every=1, lr=0.01)


def random_frame(seed=0, n_users=30, n_items=50, n=400, user_fmt="u{}", item_fmt="i{}"):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    return pd.DataFrame({"user": [user_fmt.format(u) for u in users], "item": [item_fmt.format(i) for i in items]})


@pytest.fixture(scope="module")
def df():
    return random_frame()


@pytest.fixture(scope="module")
def rec(df):
    return Recommender("lightgcn", validation=0.2, epochs=2, **TINY).fit(df)


def seen_sets(df):
    out = {}
    for u, i in zip(df["user"], df["item"]):
        out.setdefault(u, set()).add(i)
    return out


def reference_topk(rec, user, k, exclude=(), candidates=None):
    """Brute-force numpy top-k of one user: [(item, score)], best first."""
    ue = rec.user_embeddings()
    ie = rec.item_embeddings()
    scores = ie.to_numpy() @ ue.loc[user].to_numpy()
    items = list(ie.index)
    cand = range(len(items)) if candidates is None else [items.index(c) for c in candidates]
    pairs = [(items[j], float(scores[j])) for j in cand if items[j] not in exclude]
    pairs.sort(key=lambda p: -p[1])
    return pairs[:k]


# ----------------------------------------------------------------------------- recommend
def test_recommend_equals_numpy_reference(rec, df):
    seen = seen_sets(df)
    users = ["u3", "u0", "u17", "u3"]  # order kept, repeats answered again
    out = rec.recommend(users, k=7)
    assert list(out.columns) == ["user", "item", "score", "rank", "source"]
    assert out["score"].dtype == np.float32 and out["rank"].dtype == np.int64
    assert list(out["user"]) == [u for u in users for _ in range(7)]
    for j, u in enumerate(users):
        part = out.iloc[7 * j: 7 * (j + 1)]
        ref = reference_topk(rec, u, 7, exclude=seen[u])
        assert list(part["item"]) == [i for i, _ in ref]
        np.testing.assert_allclose(part["score"], [s for _, s in ref], rtol=1e-5, atol=1e-6)
        assert list(part["rank"]) == list(range(1, 8))
        assert not set(part["item"]) & seen[u]


def test_recommend_without_exclusion_and_restricted(rec, df):
    seen = seen_sets(df)
    u = "u5"
    out = rec.recommend(u, k=5, exclude_seen=False)
    assert list(out["item"]) == [i for i, _ in reference_topk(rec, u, 5)]
    cand = ["i1", "i2", "i3", "i4", "i7", "i9", "i11", "i2"] + sorted(seen[u])[:2]  # duplicates ignored
    uniq = list(dict.fromkeys(cand))
    for excl in (True, False):
        got = rec.recommend([u], k=4, items=cand, exclude_seen=excl)
        ref = reference_topk(rec, u, 4, exclude=seen[u] if excl else (), candidates=uniq)
        assert list(got["item"]) == [i for i, _ in ref]
        np.testing.assert_allclose(got["score"], [s for _, s in ref], rtol=1e-5, atol=1e-6)


def test_k_larger_than_candidates_returns_all_candidates(rec, df):
    seen = seen_sets(df)
    out = rec.recommend(["u1", "u2"], k=10_000)
    for u in ("u1", "u2"):
        part = out[out["user"] == u]
        assert len(part) == rec.n_items_ - len(seen[u])
        assert list(part["rank"]) == list(range(1, len(part) + 1))
        assert part["score"].is_monotonic_decreasing
    few = rec.recommend("u1", k=10, items=["i1", "i2", "i3"], exclude_seen=False)
    assert sorted(few["item"]) == ["i1", "i2", "i3"]


def test_memory_budget_chunking_gives_the_same_result(rec):
    users = list(rec.user_index_)
    big = rec.recommend(users, k=5, memory_budget_mb=1024)
    one_row_chunks = rec.recommend(users, k=5, memory_budget_mb=1e-6)
    pd.testing.assert_frame_equal(big, one_row_chunks)
    everyone = rec.recommend(None, k=5)
    pd.testing.assert_frame_equal(big, everyone)


def test_unknown_users(rec, df):
    with pytest.raises(ConfigError) as err:
        rec.recommend(["u1", "ghost", ("x", 1), "ghost"], k=3)
    msg = str(err.value)
    assert "2 unknown user id(s)" in msg and "'ghost'" in msg and "('x', 1)" in msg
    skipped = rec.recommend(["ghost", "u1"], k=3, on_unknown="skip")
    assert set(skipped["user"]) == {"u1"}
    pd.testing.assert_frame_equal(skipped, rec.recommend("u1", k=3))

    counts = df["item"].value_counts()
    pop = sorted(counts.index, key=lambda i: (-counts[i], list(rec.item_index_).index(i)))
    mixed = rec.recommend(["ghost", "u1", "nobody"], k=4, on_unknown="popular")
    assert list(mixed["user"]) == ["ghost"] * 4 + ["u1"] * 4 + ["nobody"] * 4
    ghost = mixed[mixed["user"] == "ghost"]
    assert list(ghost["item"]) == pop[:4]
    # (issue 20 item 2) a fallback is marked, and its score is NaN: popularity counts are not on
    # the model's scale, so one "score" column must not mix the two
    assert ghost["score"].isna().all() and (ghost["source"] == "popular").all()
    assert (mixed.loc[mixed["user"] == "u1", "source"] == "model").all()
    assert list(ghost["rank"]) == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(mixed[mixed["user"] == "u1"].reset_index(drop=True), rec.recommend("u1", k=4))
    cand = ["i3", "i4", "i5"]
    restricted = rec.recommend("ghost", k=10, items=cand, on_unknown="popular")
    assert list(restricted["item"]) == sorted(cand, key=lambda i: (-counts.get(i, 0), list(rec.item_index_).index(i)))


def test_unknown_candidate_items_are_listed(rec):
    with pytest.raises(ConfigError, match=r"2 unknown item id\(s\) in items: 'nope', 7"):
        rec.recommend("u1", items=["i1", "nope", 7])
    with pytest.raises(ConfigError):
        rec.recommend("u1", k=0)
    with pytest.raises(ConfigError):
        rec.recommend("u1", on_unknown="ignore")


def test_not_fitted():
    r = Recommender()
    for call in (lambda: r.recommend(["a"]), lambda: r.predict_score(["a"], ["b"]), lambda: r.save("/nonexistent"),
                 lambda: r.similar_items(), lambda: r.evaluate(pd.DataFrame({"user": [1], "item": [1]}))):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert issubclass(NotFittedError, ConfigError) and issubclass(NotFittedError, GraphkitError)
    assert not hasattr(r, "model_")


def test_score_similar_items_and_embeddings(rec):
    ue, ie = rec.user_embeddings(), rec.item_embeddings()
    assert ue.index.name == "user" and list(ue.index) == list(rec.user_index_)
    s = rec.predict_score(["u1", "u2", "u1"], ["i3", "i4", "i5"])
    ref = [ue.loc[u].to_numpy() @ ie.loc[i].to_numpy() for u, i in [("u1", "i3"), ("u2", "i4"), ("u1", "i5")]]
    np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-6)
    assert rec.predict_score("u1", ["i3", "i4"]).shape == (2,)
    with pytest.raises(ConfigError, match="unknown item"):
        rec.predict_score(["u1"], ["zzz"])
    with pytest.raises(ConfigError, match="same length"):
        rec.predict_score(["u1", "u2"], ["i1", "i2", "i3"])

    sim = rec.similar_items(["i3", "i8"], k=4)
    assert list(sim.columns) == ["item", "similar_item", "score", "rank"]
    normed = ie.to_numpy() / np.linalg.norm(ie.to_numpy(), axis=1, keepdims=True)
    items = list(ie.index)
    for q in ("i3", "i8"):
        c = normed @ normed[items.index(q)]
        c[items.index(q)] = -np.inf
        order = np.argsort(-c)[:4]
        part = sim[sim["item"] == q]
        assert list(part["similar_item"]) == [items[j] for j in order]
        np.testing.assert_allclose(part["score"], c[order], rtol=1e-5, atol=1e-6)
    assert len(rec.similar_items("i3", k=10_000)) == rec.n_items_ - 1


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_equals_graphkit_metrics():
    full = random_frame(seed=3, n=600)
    train, test = leave_last_out(full, "user")
    rec = Recommender(validation=None, epochs=1, **TINY).fit(train)
    # the reference needs test pairs disjoint from train: drop the repeats first
    seen = seen_sets(train)
    keep = [i not in seen.get(u, ()) for u, i in zip(test["user"], test["item"])]
    clean = test[keep]
    got = rec.evaluate(clean, k=(5, 10), unknown_items="drop")
    u = rec.user_index_.get_indexer(clean["user"])
    i = rec.item_index_.get_indexer(clean["item"])
    known = i >= 0
    assert got["unknown_items"] == int((~known).sum())
    truth = sp.csr_matrix((np.ones(known.sum()), (u[known], i[known])), shape=(rec.n_users_, rec.n_items_))
    ue, ie = rec.user_embeddings().to_numpy(), rec.item_embeddings().to_numpy()
    ref = evaluate_embeddings(torch.from_numpy(ue), torch.from_numpy(ie), truth, exclude=rec.seen_, ks=(5, 10),
                              metrics=RANKING_METRICS)
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    assert set(got) >= {f"{m}@{k}" for m in RANKING_METRICS for k in (5, 10)}
    assert got["users"] == len(set(clean["user"][known]))
    with_repeats = rec.evaluate(test, k=10)
    assert with_repeats["seen_pairs"] == int((~np.asarray(keep)).sum())


def test_evaluate_counts_unknown_users_and_items(rec):
    test = pd.DataFrame({"user": ["u1", "u1", "ghost", "ghost2", "u2"], "item": ["brand-new", "i1", "i2", "i3", "i9"]})
    miss = rec.evaluate(test, k=5, exclude_seen=False)
    drop = rec.evaluate(test, k=5, exclude_seen=False, unknown_items="drop")
    assert miss["unknown_users"] == 2 and miss["unknown_items"] == 1 and miss["users"] == 2
    assert drop["unknown_items"] == 1
    # the unknown item of u1 halves its achievable recall in "miss" mode
    assert miss["recall@5"] <= drop["recall@5"]
    with pytest.raises(ConfigError, match="no test user left"):
        rec.evaluate(pd.DataFrame({"user": ["ghost"], "item": ["i1"]}))


# ----------------------------------------------------------------------------- warm start
@pytest.mark.parametrize("model", ["lightgcn", "ultragcn"])
def test_warm_start_keeps_known_embeddings(model):
    hp = dict(embedding_dim=8, batch_size=128, eval_every=1)
    old_df = random_frame(seed=1, n_users=20, n_items=30, n=200)
    new_df = pd.concat([old_df[old_df["user"] != "u0"],  # u0 disappears
                        pd.DataFrame({"user": ["new1", "new1", "u1"], "item": ["i1", "fresh", "fresh2"]})])
    rec = Recommender(model, validation=None, epochs=1, seed=5, **hp).fit(old_df)

    def tables(r):
        m = r.model_
        if model == "lightgcn":
            w = m.embedding.weight.detach().numpy()
            return w[: r.n_users_], w[r.n_users_:]
        return m.user_embedding.weight.detach().numpy(), m.item_embedding.weight.detach().numpy()

    old_u, old_i = tables(rec)
    old_users, old_items = list(rec.user_index_), list(rec.item_index_)
    rec.set_params(epochs=0).fit(new_df, warm_start=True)
    assert rec.record_["warm_start"] is True
    new_u, new_i = tables(rec)
    fresh = Recommender(model, validation=None, epochs=0, seed=5, **hp).fit(new_df)
    fresh_u, fresh_i = tables(fresh)
    for new_t, old_t, fresh_t, new_ids, old_ids in ((new_u, old_u, fresh_u, list(rec.user_index_), old_users),
                                                     (new_i, old_i, fresh_i, list(rec.item_index_), old_items)):
        for row, raw in enumerate(new_ids):
            if raw in old_ids:
                np.testing.assert_array_equal(new_t[row], old_t[old_ids.index(raw)])
            else:  # new ids: exactly the model's own initialisation with this seed
                np.testing.assert_array_equal(new_t[row], fresh_t[row])
    assert "u0" not in list(rec.user_index_) and "new1" in list(rec.user_index_)
    rec.set_params(epochs=1).fit(new_df, warm_start=True)  # and training continues from there
    assert len(rec.history_) == 1


def test_warm_start_needs_the_same_shapes(df):
    rec = Recommender(validation=None, epochs=0, embedding_dim=8).fit(df)
    with pytest.raises(ConfigError, match="same shape"):
        rec.set_params(embedding_dim=4).fit(df, warm_start=True)
    with pytest.raises(ConfigError, match="same model class"):
        rec.set_params(model="ultragcn", embedding_dim=8).fit(df, warm_start=True)


# ----------------------------------------------------------------------------- input handling
def test_bad_inputs_raise_graphkit_errors():
    r = Recommender(epochs=0)
    with pytest.raises(DataFormatError, match="empty"):
        r.fit(pd.DataFrame({"user": [], "item": []}))
    with pytest.raises(DataFormatError) as err:
        r.fit(pd.DataFrame({"customer": [1], "product": [2]}))
    assert "'user'" in str(err.value) and "'item'" in str(err.value)
    with pytest.raises(DataFormatError) as err:
        r.fit(pd.DataFrame({"user": ["a", None, "b", np.nan], "item": [1, 2, 3, 4]}))
    assert "2 missing" in str(err.value) and "'user'" in str(err.value)
    with pytest.raises(DataFormatError, match="DataFrame or a scipy.sparse"):
        r.fit([("a", 1)])
    with pytest.raises(DataFormatError, match="hashable"):
        r.fit(pd.DataFrame({"user": [[1], [2]], "item": [1, 2]}))
    with pytest.raises(DataFormatError, match="negative"):
        Recommender(weight_col="w", epochs=0).fit(pd.DataFrame({"user": [1, 2], "item": [1, 2], "w": [1.0, -2.0]}))
    with pytest.raises(DataFormatError, match="missing"):
        Recommender(weight_col="w", epochs=0).fit(pd.DataFrame({"user": [1, 2], "item": [1, 2], "w": [1.0, None]}))
    with pytest.raises(DataFormatError, match="column"):
        Recommender(time_col="ts", epochs=0).fit(pd.DataFrame({"user": [1], "item": [1]}))
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        Recommender(embeding_dim=3)
    with pytest.raises(ConfigError):
        Recommender(duplicates="sum")
    with pytest.raises(ConfigError):
        Recommender(validation=1.5)
    with pytest.raises(ConfigError):
        Recommender(user_col="x", item_col="x")
    r = Recommender(epochs=3)
    with pytest.raises(ConfigError, match="unknown hyper-parameter 'foo'"):
        r.set_params(epochs=5, foo=1)
    assert r.get_params()["epochs"] == 3 and "foo" not in r.get_params()  # unchanged after a failed set_params
    assert repr(r.set_params(duplicates="drop")) == "Recommender(duplicates='drop', epochs=3)"


def test_duplicates_policies():
    frame = pd.DataFrame({"user": ["a", "a", "a", "b", "b"], "item": ["x", "x", "y", "x", "z"],
                          "w": [2.0, 3.0, 1.0, 0.0, 4.0], "ts": [5, 1, 2, 3, 4]})
    counted = Recommender(epochs=0, validation=None).fit(frame)
    assert counted.seen_[counted.user_index_.get_loc("a"), counted.item_index_.get_loc("x")] == 2
    weighted = Recommender(epochs=0, validation=None, weight_col="w").fit(frame)
    assert weighted.seen_[weighted.user_index_.get_loc("a"), weighted.item_index_.get_loc("x")] == 5
    assert weighted.record_["input"]["zero_weight_rows"] == 1  # (b, x) has weight 0: not an interaction
    assert weighted.seen_[weighted.user_index_.get_loc("b"), weighted.item_index_.get_loc("x")] == 0
    np.testing.assert_array_equal(weighted.popularity_, [5.0, 1.0, 4.0])
    dropped = Recommender(epochs=0, validation=None, weight_col="w", time_col="ts", duplicates="drop").fit(frame)
    assert dropped.seen_[0, 0] == 3.0  # the earliest row (ts=1) is kept
    with pytest.raises(DataFormatError, match=r"1 duplicate row.*user='a', item='x'\) x2"):
        Recommender(epochs=0, duplicates="error").fit(frame)


def test_sparse_matrix_input_uses_indices_as_ids():
    m = sp.csr_matrix(np.array([[0, 1, 0, 2], [0, 0, 0, 0], [3, 0, 0, 1]], dtype=np.float32))
    rec = Recommender(epochs=0, validation=None).fit(m)
    assert list(rec.user_index_) == [0, 2] and list(rec.item_index_) == [0, 1, 3]
    assert rec.seen_[1, 0] == 3
    with pytest.raises(ConfigError, match="unknown user"):
        rec.recommend([1])
    assert set(rec.recommend(0, k=5)["item"]) == {0}


def test_time_col_validation_holds_out_the_latest():
    rows = [(u, f"i{j}", 100 * u + (10 - j)) for u in range(6) for j in range(10)]  # i0 is each user's latest
    frame = pd.DataFrame(rows, columns=["user", "item", "ts"])
    rec = Recommender(epochs=0, validation=0.1, time_col="ts").fit(frame)
    s = rec.seen_.tocoo()
    held = {(rec.user_index_[a], rec.item_index_[b]) for a, b, m in zip(s.row, s.col, rec._train_mask) if not m}
    assert held == {(u, "i0") for u in range(6)}


def test_split_helpers():
    frame = pd.DataFrame({"user": ["a", "a", "a", "b", "c", "c"], "item": [1, 2, 3, 1, 4, 5],
                          "ts": [3, 1, 2, 9, 5, 5]})
    train, test = leave_last_out(frame, "user", "ts")
    assert sorted(zip(test["user"], test["item"])) == [("a", 1), ("c", 5)]  # c: tie at ts=5 -> row order
    assert len(train) + len(test) == len(frame) and "b" in set(train["user"])
    tr2, te2 = leave_last_out(frame, "user")  # row order as time
    assert sorted(zip(te2["user"], te2["item"])) == [("a", 3), ("c", 5)]
    tr3, te3 = temporal_split(frame, "ts", 0.34)
    assert list(te3.index) == [3, 5]  # the latest 2 rows; the tie at ts=5 is cut by row order
    tr4, te4 = temporal_split(frame, "ts", cutoff=5)
    assert sorted(te4["ts"]) == [5, 5, 9] and sorted(tr4["ts"]) == [1, 2, 3]
    with pytest.raises(ConfigError):
        temporal_split(frame, "ts")
    with pytest.raises(DataFormatError):
        leave_last_out(frame, "customer")
    with pytest.raises(ConfigError, match="compared"):
        temporal_split(frame, "ts", cutoff="yesterday")


# ----------------------------------------------------------------------------- save / load
MIXED_IDS = ["alice", 7, ("shop", 3), 2.5, b"\x00raw", uuid.UUID(int=12345), pd.Timestamp("2024-01-02 03:04:05"),
             np.int64(42), dt.date(2020, 1, 1), decimal.Decimal("1.10"), frozenset({1, 2}), (1, ("nested", None))]


def id_frames():
    rng = np.random.default_rng(7)
    n = 120
    yield "int64", pd.DataFrame({"user": rng.integers(0, 15, n), "item": rng.integers(100, 130, n)})
    yield "str", random_frame(seed=8, n_users=12, n_items=25, n=n)
    yield "tuple", pd.DataFrame({"user": [("u", int(x)) for x in rng.integers(0, 12, n)],
                                 "item": [(int(x), "i") for x in rng.integers(0, 25, n)]})
    users = np.empty(n, dtype=object)
    items = np.empty(n, dtype=object)
    for j in range(n):
        users[j] = MIXED_IDS[j % len(MIXED_IDS)]
        items[j] = MIXED_IDS[(j * 5 + j // len(MIXED_IDS)) % len(MIXED_IDS)]
    yield "mixed", pd.DataFrame({"user": users, "item": items})


def same_ids(a, b):
    return len(a) == len(b) and all(type(x) is type(y) and x == y for x, y in zip(a, b))


@pytest.mark.parametrize("kind,frame", list(id_frames()), ids=[k for k, _ in id_frames()])
def test_raw_ids_round_trip_through_save_load(tmp_path, kind, frame):
    rec = Recommender(epochs=0, validation=None, embedding_dim=8, num_layers=1).fit(frame)
    rec.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    assert same_ids(list(rec.user_index_), list(back.user_index_))
    assert same_ids(list(rec.item_index_), list(back.item_index_))
    assert rec.user_index_.dtype == back.user_index_.dtype
    users = list(rec.user_index_)
    pd.testing.assert_frame_equal(rec.recommend(users, k=5), back.recommend(users, k=5))
    assert same_ids(list(rec.recommend(users, k=5)["item"]), list(back.recommend(users, k=5)["item"]))
    assert back.get_params() == rec.get_params()
    assert (back.seen_ != rec.seen_).nnz == 0


def test_load_in_a_fresh_process(tmp_path):
    frame = dict(id_frames())["mixed"]
    rec = Recommender(epochs=0, validation=None, embedding_dim=8, num_layers=1).fit(frame)
    rec.save(tmp_path / "m")
    users = list(rec.user_index_)
    code = (
        "import json, sys\n"
        "from graphkit.recommender import Recommender\n"
        "r = Recommender.load(sys.argv[1])\n"
        "out = r.recommend(list(r.user_index_), k=5)\n"
        "json.dump([[repr(u), type(u).__name__, repr(i), type(i).__name__, float(s), int(k)]\n"
        "           for u, i, s, k, _ in out.itertuples(index=False)], sys.stdout)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    mine = rec.recommend(users, k=5)
    expected = [[repr(u), type(u).__name__, repr(i), type(i).__name__, float(s), int(k)]
                for u, i, s, k, _ in mine.itertuples(index=False)]
    assert json.loads(proc.stdout) == expected


def test_save_refuses_unencodable_ids_and_foreign_folders(tmp_path):
    class Opaque:
        def __hash__(self):
            return 1

        def __eq__(self, other):
            return isinstance(other, Opaque)

    frame = pd.DataFrame({"user": [Opaque(), "b"], "item": [1, 2]})
    rec = Recommender(epochs=0, validation=None).fit(frame)
    with pytest.raises(CheckpointError, match="cannot save user id .*Opaque"):
        rec.save(tmp_path / "m")
    assert not (tmp_path / "m").exists() and not list(tmp_path.iterdir())  # nothing half-written
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    ok = Recommender(epochs=0, validation=None).fit(pd.DataFrame({"user": [1, 2], "item": [1, 2]}))
    with pytest.raises(CheckpointError, match="refusing"):
        ok.save(foreign)
    assert (foreign / "keep.txt").read_text() == "mine"
    ok.save(tmp_path / "again")
    ok.save(tmp_path / "again")  # replacing a previous save is fine
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [
        "checksums.json", "embeddings.safetensors", "interactions.safetensors", "metadata.json", "weights.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".again.lock", "again", "notes"]  # the save's lock file


def test_load_rejects_newer_format_and_tampered_files(tmp_path):
    rec = Recommender(epochs=0, validation=None).fit(pd.DataFrame({"user": [1, 2, 2], "item": [1, 2, 3]}))
    path = rec.save(tmp_path / "m")
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["format_version"] == 2 and meta["model"]["name"] == "lightgcn" and "torch" in meta["versions"]
    meta["format_version"] = 99
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"format_version 99.*reads format_version 1, 2"):
        Recommender.load(path)
    meta["format_version"] = 2
    (path / "metadata.json").write_text(json.dumps(meta))
    Recommender.load(path)
    with open(path / "embeddings.safetensors", "r+b") as fh:
        fh.seek(-4, os.SEEK_END)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(CheckpointError, match="sha256"):
        Recommender.load(path)
    with pytest.raises(CheckpointError, match="no metadata.json"):
        Recommender.load(tmp_path / "missing")


# ----------------------------------------------------------------------------- property
scalar_ids = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c", ""]), st.tuples(st.integers(0, 2), st.just("t")),
                       st.floats(allow_nan=True, allow_infinity=True, width=32), st.none(), st.booleans())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(scalar_ids, scalar_ids, st.integers(0, 2)), min_size=0, max_size=25),
       duplicates=st.sampled_from(["count", "drop", "error"]), weighted=st.booleans(),
       epochs=st.sampled_from([0, 0, 1]))
def test_random_frames_raise_only_graphkit_errors(tmp_path_factory, rows, duplicates, weighted, epochs):
    users = np.empty(len(rows), dtype=object)
    items = np.empty(len(rows), dtype=object)
    for j, (u, i, _) in enumerate(rows):
        users[j], items[j] = u, i
    frame = pd.DataFrame({"user": users, "item": items, "w": [w for _, _, w in rows]})
    rec = Recommender(duplicates=duplicates, weight_col="w" if weighted else None, epochs=epochs, validation=0.3,
                      embedding_dim=4, num_layers=1, batch_size=8)
    try:
        rec.fit(frame)
        request = list(frame["user"]) + ["never-seen"]
        out = rec.recommend(request, k=3, on_unknown="popular")
        assert len(out) <= 3 * len(request) and out["rank"].between(1, 3).all()
        folder = tmp_path_factory.mktemp("prop") / "m"
        rec.save(folder)
        back = Recommender.load(folder)
        pd.testing.assert_frame_equal(back.recommend(None, k=3), rec.recommend(None, k=3))
    except GraphkitError:
        pass


def test_warm_start_keeps_the_trained_rows_of_a_model_that_initialises_in_prepare(df):
    """fit(..., warm_start=True) copies the trained rows into the new model; LightGCN(init="svd")
    must not then replace them by a fresh SVD start in prepare() (it did: the refit began from
    the SVD, not from the fitted model)."""
    rec = Recommender(epochs=2, validation=None, embedding_dim=8, num_layers=1, init="svd", lr=0.05).fit(df)
    trained = rec.model_.embedding.weight.detach().clone()
    rec.set_params(epochs=0)
    rec.fit(df, warm_start=True)
    assert torch.equal(rec.model_.embedding.weight.detach(), trained)


def test_load_keeps_the_trained_weights_of_a_model_that_initialises_in_prepare(tmp_path, df):
    """LightGCN(init="svd") sets its weights in prepare(); load must not overwrite the saved
    (trained) ones with a fresh SVD start (model_ feeds warm starts and re-saves)."""
    rec = Recommender(epochs=2, validation=None, embedding_dim=8, num_layers=1, init="svd", lr=0.05).fit(df)
    rec.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    a, b = rec.model_.state_dict(), back.model_.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k].to(a[k].device)) for k in a)
