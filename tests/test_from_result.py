"""Recommender.from_result: a graphkit.fit result served with raw ids, checked against dense numpy."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import graphkit
from graphkit import CheckpointError, ConfigError
from graphkit.datasets.interactions import from_interactions
from graphkit.recommender import Recommender
from graphkit.training import FitResult

K = 5
MODELS = {"lightgcn": dict(embedding_dim=8, num_layers=2), "ultragcn": dict(embedding_dim=8), "popularity": {}}


def frame(seed=0, n_users=30, n_items=40, n=500):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"user": [f"u{u}" for u in rng.integers(0, n_users, n)],
                       "item": [f"i{i}" for i in rng.integers(0, n_items, n)]})
    return df.drop_duplicates(ignore_index=True)


def fit(name, ds, **kw):
    return graphkit.fit(name, ds, preset=False, epochs=2, progress=False, eval_every=1, **{**MODELS[name], **kw})


@pytest.fixture(scope="module")
def ds():
    return from_interactions(frame())


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, ds):
    return request.param, fit(request.param, ds)


def reference(result, ds):
    """Dense numpy scores [U, I] (float64) of the result's model, seen (full_train) items at -inf."""
    ue, ie = (t.detach().cpu().double().numpy() for t in result.model.embeddings())
    scores = ue @ ie.T
    scores[ds.full_train.toarray() > 0] = -np.inf
    return scores


def test_recommend_matches_dense_reference_with_raw_ids(fitted, ds):
    name, result = fitted
    rec = Recommender.from_result(result, dataset=ds)
    scores = reference(result, ds)
    top = rec.recommend(k=K)
    assert list(top.columns) == ["user", "item", "score", "rank", "source"]
    assert set(top["user"]) == set(ds.user_ids) and top["item"].isin(ds.item_ids).all()
    col = {raw: j for j, raw in enumerate(ds.item_ids)}
    for u, raw_user in enumerate(ds.user_ids):
        got = top[top["user"] == raw_user]
        assert list(got["rank"]) == list(range(1, K + 1))
        items = np.array([col[i] for i in got["item"]])
        assert len(set(items)) == K and np.isfinite(scores[u, items]).all()  # unseen, distinct
        np.testing.assert_allclose(got["score"], scores[u, items], rtol=1e-5, atol=1e-7)
        best = np.sort(scores[u])[::-1][:K]  # tie-proof: the returned scores are the K best ones
        np.testing.assert_allclose(got["score"], best, rtol=1e-5, atol=1e-7)
        if name == "lightgcn":  # no ties: the exact item order
            order = np.argsort(-scores[u], kind="stable")[:K]
            assert list(got["item"]) == list(ds.item_ids[order])


def test_state_matches_dataset_and_result(fitted, ds):
    name, result = fitted
    rec = Recommender.from_result(result, dataset=ds)
    assert rec.model_ is result.model
    assert (rec.n_users_, rec.n_items_) == (ds.num_users, ds.num_items)
    assert list(rec.user_index_) == list(ds.user_ids) and list(rec.item_index_) == list(ds.item_ids)
    assert (rec.seen_ != ds.full_train).nnz == 0  # test items are not seen
    np.testing.assert_array_equal(rec.popularity_, np.asarray(ds.full_train.sum(0)).ravel())
    pd.testing.assert_frame_equal(rec.history_, result.history)
    assert rec.record_["fingerprint"] == ds.fingerprint
    params = rec.get_params()
    assert params["model"] == name and params["seed"] == result.record["seed"] and params["epochs"] == 2
    assert params["validation"] == pytest.approx(ds.meta["val_ratio"])
    for key, value in result.model.hparams().items():
        if key not in ("num_users", "num_items"):
            assert params[key] == value


def test_score_similar_items_and_evaluate(fitted, ds):
    name, result = fitted
    rec = Recommender.from_result(result, dataset=ds)
    ue, ie = (t.detach().cpu().double().numpy() for t in result.model.embeddings())
    users, items = list(ds.user_ids), list(ds.item_ids)
    want = [ue[users.index(u)] @ ie[items.index(i)] for u, i in (("u1", "i3"), ("u2", "i4"))]
    np.testing.assert_allclose(rec.predict_score(["u1", "u2"], ["i3", "i4"]), want, rtol=1e-5, atol=1e-7)
    sim = rec.similar_items(["i3"], k=3)
    assert len(sim) == 3 and "i3" not in set(sim["similar_item"])
    test = ds.test.tocoo()
    test_df = pd.DataFrame({"user": ds.user_ids[test.row], "item": ds.item_ids[test.col]})
    out = rec.evaluate(test_df, k=20)
    assert out["seen_pairs"] == 0 and out["users"] == len(np.unique(test.row))
    if name != "popularity":  # the trainer's test metrics, recomputed through the serving path
        assert out["recall@20"] == pytest.approx(result.metrics["recall@20"], abs=1e-6)
        assert out["ndcg@20"] == pytest.approx(result.metrics["ndcg@20"], abs=1e-6)


def test_save_load_round_trip(fitted, ds, tmp_path):
    name, result = fitted
    rec = Recommender.from_result(result, dataset=ds)
    back = Recommender.load(rec.save(tmp_path / name))
    pd.testing.assert_frame_equal(back.recommend(k=K), rec.recommend(k=K))
    pd.testing.assert_frame_equal(back.similar_items(k=3), rec.similar_items(k=3))
    np.testing.assert_array_equal(back.predict_score("u1", ["i1", "i2"]), rec.predict_score("u1", ["i1", "i2"]))
    assert json.loads(json.dumps(back.get_params())) == json.loads(json.dumps(rec.get_params()))
    assert (back.seen_ != rec.seen_).nnz == 0 and back.record_["fingerprint"] == ds.fingerprint


def test_unprepared_model_is_prepared_and_keeps_its_weights(ds):
    """A model rebuilt from saved weights (as FitResult.load does) has no graph yet; LightGCN's
    init="svd" re-initialises its weights in prepare(), which must not reach the trained ones."""
    result = fit("lightgcn", ds, init="svd")
    model = type(result.model)(ds.num_users, ds.num_items, **{
        k: v for k, v in result.model.hparams().items() if k not in ("num_users", "num_items")})
    model.load_state_dict(result.model.state_dict())
    assert model.graph is None
    bare = SimpleNamespace(model=model, record=result.record, history=result.history)
    rec = Recommender.from_result(bare, dataset=ds)
    assert torch.equal(rec.model_.embedding.weight, result.model.embedding.weight)
    pd.testing.assert_frame_equal(rec.recommend(k=K), Recommender.from_result(result, dataset=ds).recommend(k=K))


@pytest.mark.skipif(not hasattr(FitResult, "load"), reason="FitResult.load not available")
def test_from_a_saved_and_loaded_result(ds, tmp_path):
    result = fit("lightgcn", ds)
    loaded = FitResult.load(result.save(tmp_path / "run"))
    assert getattr(loaded, "dataset", None) is None
    pd.testing.assert_frame_equal(Recommender.from_result(loaded, dataset=ds).recommend(k=K),
                                  Recommender.from_result(result, dataset=ds).recommend(k=K))


def write_lightgcn_folder(folder, seed=0, n_users=25, n_items=30):
    """train.txt / test.txt in the LightGCN format ("user item item ..."), every user and item present."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train, test = [], []
    for u in range(n_users):
        items = rng.choice(n_items, 8, replace=False)
        if u < n_items // 4:  # make sure every item occurs in train
            items[:4] = np.arange(4 * u, 4 * u + 4) % n_items
            items = np.unique(items)
        train.append(f"{u} " + " ".join(map(str, items[:-2])))
        test.append(f"{u} " + " ".join(map(str, items[-2:])))
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "test.txt").write_text("\n".join(test) + "\n")
    return folder


def test_dataset_loaded_from_the_record_and_fingerprint_checked(tmp_path):
    folder = write_lightgcn_folder(tmp_path / "toy")
    ds = graphkit.datasets.load(str(folder))
    result = fit("lightgcn", ds)
    record = {**result.record, "dataset": str(folder)}  # loadable by graphkit.datasets.load
    bare = SimpleNamespace(model=result.model, record=record, history=result.history)
    rec = Recommender.from_result(bare)
    assert rec.user_index_.dtype.kind == "i" and list(rec.item_index_) == list(range(ds.num_items))
    pd.testing.assert_frame_equal(rec.recommend([0, 3], k=K), Recommender.from_result(result, dataset=ds)
                                  .recommend([0, 3], k=K))
    # the files changed since training: another split, same sizes
    lines = (folder / "train.txt").read_text().splitlines()
    lines[-1] = " ".join(lines[-1].split()[:-1])
    (folder / "train.txt").write_text("\n".join(lines) + "\n")
    now = graphkit.datasets.load(str(folder)).fingerprint
    assert now != ds.fingerprint
    with pytest.raises(CheckpointError, match=rf"{now}.*{ds.fingerprint}"):
        Recommender.from_result(bare)
    with pytest.raises(CheckpointError, match="fingerprint"):
        Recommender.from_result(SimpleNamespace(model=result.model, history=result.history,
                                                record={**result.record, "fingerprint": "0123abcd"}), dataset=ds)


def test_errors(ds):
    result = fit("popularity", ds)
    with pytest.raises(ConfigError, match="recommendation"):
        Recommender.from_result(SimpleNamespace(model=result.model, record={**result.record, "task": "node"},
                                                history=result.history), dataset=ds)
    other = from_interactions(frame(seed=1, n_users=20))
    with pytest.raises(ConfigError, match="users"):
        Recommender.from_result(result, dataset=other)
    with pytest.raises(ConfigError, match="dataset="):
        Recommender.from_result(SimpleNamespace(model=result.model, record={**result.record, "dataset": None},
                                                history=result.history))
