"""``benchmarks/bench_time_to_quality.py``: the settings it forces on every run."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
ttq = pytest.importorskip("bench_time_to_quality")


@pytest.mark.parametrize("method, dataset, epochs", [
    ("lightgcn-fast", "gowalla", 2 * 10),   # fast recipe: patience 10 validations every 2 epochs
    ("lightgcn-paper", "gowalla", 10 * 5),  # paper: patience 5 validations every 10 epochs
    ("ultragcn", "ml-1m", 5 * 10),
])
def test_every_epoch_keeps_the_presets_early_stopping_window_in_epochs(method, dataset, epochs):
    # Validating every epoch with the preset's patience unscaled would stop a run eval_every
    # times sooner (the 1,800-s LightGCN fast run stopped at 819 s that way).
    assert ttq.every_epoch(SimpleNamespace(name=dataset), method) == {"eval_every": 1, "patience": epochs}


def test_only_budget_scheduled_methods_get_one_run_per_budget():
    assert ttq.follows_budget(SimpleNamespace(name="gowalla"), "lightgcn-fast")
    assert not ttq.follows_budget(SimpleNamespace(name="gowalla"), "lightgcn-paper")


def test_a_missing_extra_stops_the_invocation_before_any_run(monkeypatch, tmp_path, capsys):
    # An hour-long invocation (LightGCN paper preset, then ALS) once lost its baselines to a
    # missing `implicit` after the first run; now it exits 2 with one line up front.
    for mod in ("implicit", "implicit.cpu", "implicit.cpu.als"):
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setattr(ttq.graphkit.datasets, "load", lambda *a, **k: pytest.fail("a run started"))
    monkeypatch.setattr(sys, "argv", ["bench_time_to_quality.py", "--datasets", "ml-1m", "--methods",
                                      "lightgcn-paper", "als", "--out", str(tmp_path / "ttq")])
    with pytest.raises(SystemExit) as exc:
        ttq.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench_time_to_quality: als:") and "implicit" in err[0]
    assert not (tmp_path / "ttq" / "runs.jsonl").exists()


def test_plot_without_matplotlib_stops_before_any_run(monkeypatch, tmp_path, capsys):
    # A 3,600-s invocation once ended in a traceback at its plot, after all its runs.
    real = ttq.importlib.util.find_spec
    monkeypatch.setattr(ttq.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.setattr(ttq.graphkit.datasets, "load", lambda *a, **k: pytest.fail("a run started"))
    monkeypatch.setattr(sys, "argv", ["bench_time_to_quality.py", "--datasets", "ml-1m", "--methods", "popularity",
                                      "--out", str(tmp_path / "ttq"), "--plot", str(tmp_path / "c.png")])
    with pytest.raises(SystemExit) as exc:
        ttq.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "matplotlib" in err[0]
