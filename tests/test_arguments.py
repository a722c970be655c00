"""Arguments are checked at the door: graphkit.fit, Recommender and the CLI refuse bad values with a
GraphkitError naming the argument (issue 19, item 2), before any training starts."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import graphkit
from graphkit import ConfigError, GraphkitError
from graphkit.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_training import planted_dataset  # noqa: E402

KW = dict(epochs=1, progress=False, preset=False, embedding_dim=8, num_layers=1, batch_size=512)


@pytest.fixture(scope="module")
def ds():
    return planted_dataset()


BAD = [
    (dict(seed=-1), "seed"), (dict(seed=2 ** 32), "seed"), (dict(seed=1.5), "seed"), (dict(seed=True), "seed"),
    (dict(seed="7"), "seed"), (dict(device="bogus"), "device"), (dict(device=3), "device"),
    (dict(num_threads=0), "num_threads"), (dict(num_threads=1.5), "num_threads"),
    (dict(max_time=-1.0), "max_time"), (dict(max_time=float("nan")), "max_time"),
    (dict(max_time=float("inf")), "max_time"), (dict(epochs=True), "epochs"), (dict(epochs=0), "epochs"),
    (dict(embedding_dim=8.5), "embedding_dim"), (dict(num_layers=1.0), "num_layers"),
    (dict(init_std=float("nan")), "init_std"), (dict(lr=float("nan")), "lr"), (dict(lr=-1e-3), "lr"),
    (dict(optimizer="adamax"), "optimizer"), (dict(scheduler="linear"), "scheduler"), (dict(bogus=1), "bogus"),
]
if not __import__("torch").cuda.is_available():
    BAD.append((dict(device="cuda"), "CUDA"))


@pytest.mark.parametrize("kw, named", BAD, ids=[f"{list(k)[0]}={list(k.values())[0]!r}" for k, _ in BAD])
def test_fit_refuses_bad_arguments_by_name(ds, kw, named):
    with pytest.raises(ConfigError, match=named):
        graphkit.fit("lightgcn", ds, **{**KW, **kw})


def test_numpy_integer_seeds_are_accepted_and_equal_to_python_ints(ds):
    a = graphkit.fit("lightgcn", ds, **{**KW, "seed": np.int64(5)})
    b = graphkit.fit("lightgcn", ds, **{**KW, "seed": 5})
    assert a.metrics == b.metrics and a.record["seed"] == 5 and type(a.record["seed"]) is int


@pytest.mark.parametrize("model", [None, 123, object(), int])
def test_fit_refuses_what_is_not_a_model(ds, model):
    with pytest.raises(ConfigError, match="model must be"):
        graphkit.fit(model, ds, **KW)


@pytest.mark.parametrize("kw", [dict(seed=-1), dict(seed=1.5), dict(device="bogus"), dict(num_threads=0),
                                dict(embedding_dim=8.5), dict(max_time=float("nan"))])
def test_recommender_refuses_bad_arguments(kw):
    df = pd.DataFrame({"user": np.repeat(np.arange(20), 6), "item": np.tile(np.arange(30), 4)})
    with pytest.raises(GraphkitError):
        graphkit.Recommender("lightgcn", epochs=1, progress=False, **kw).fit(df)


def one_line_exit_2(res):
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_cli_set_with_a_bad_value(tmp_path):
    from test_bench import write_rec_folder

    folder = write_rec_folder(tmp_path / "data")
    line = one_line_exit_2(CliRunner().invoke(main, ["fit", "lightgcn", "-d", str(folder), "--quiet", "--no-preset",
                                                     "--epochs", "1", "--set", "embedding_dim=abc"]))
    assert "embedding_dim" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_cli_unwritable_out(tmp_path):
    from test_bench import write_rec_folder

    folder = write_rec_folder(tmp_path / "data")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        line = one_line_exit_2(CliRunner().invoke(main, ["fit", "lightgcn", "-d", str(folder), "--quiet",
                                                         "--no-preset", "--epochs", "1", "--out", str(ro / "x")]))
        assert str(ro) in line
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("args", [["-d", "gow\x00alla"], ["-d", "gowalla", "--out", "runs/a\x00b"],
                                  ["-d", "gowalla", "--data-dir", "/tmp/\x00"]])
def test_cli_nul_byte_in_a_path(args):
    line = one_line_exit_2(CliRunner().invoke(main, ["fit", "lightgcn", *args, "--quiet"]))
    assert "NUL byte" in line
