"""CLI polish (issue 20): readable ``datasets list`` / ``models list`` tables, JSON objects with
``--json``, and a fast start: ``graphkit --help`` and ``import graphkit`` do not import torch
(the public names are imported on first use)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

import graphkit.models
from graphkit import ConfigError
from graphkit.cli import main

REPO = Path(__file__).resolve().parents[1]


def run(*args):
    return CliRunner().invoke(main, list(args))


def python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from the repository root (this checkout's graphkit)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def _rows(output: str):
    """``{first cell: line}`` of a table's body (continuation lines left out)."""
    lines = output.splitlines()
    return {line.split()[0]: line for line in lines[1:] if line and not line[0].isspace()}


# ----------------------------------------------------------------------------- datasets list
def test_datasets_list_is_a_table():
    res = run("datasets", "list")
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0].split()
    assert header == ["NAME", "TASK", "DESCRIPTION"]
    assert "DatasetInfo(" not in res.output
    rows = _rows(res.output)
    assert "recommendation" in rows["gowalla"] and "LightGCN/NGCF split" in rows["gowalla"]
    assert "node-classification" in rows["cora"]
    # the columns line up: every row's task starts where the header's TASK does
    col = res.output.splitlines()[0].index("TASK")
    assert rows["ml-1m"][col:].startswith("recommendation")
    assert rows["pubmed"][col:].startswith("node-classification")


def test_datasets_list_json_is_a_list_of_objects():
    res = run("datasets", "list", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert isinstance(data, list) and data
    assert all(isinstance(d, dict) and set(d) == {"name", "task", "description"} for d in data)
    by_name = {d["name"]: d for d in data}
    assert by_name["gowalla"]["task"] == "recommendation"
    assert by_name["cora"]["task"] == "node-classification"
    assert "LightGCN" in by_name["gowalla"]["description"]
    assert [d["name"] for d in data] == [d.name for d in graphkit.datasets.available()]


# ----------------------------------------------------------------------------- models list
def test_models_list_is_a_table():
    res = run("models", "list")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].split() == ["NAME", "TASK", "CLASS", "PAPER", "PRESETS", "FAST", "PRESET"]
    rows = _rows(res.output)
    assert set(graphkit.models.available_models()) <= set(rows)
    light = rows["lightgcn"].split()
    assert light[:3] == ["lightgcn", "recommendation", "LightGCN"] and "SIGIR 2020" in rows["lightgcn"]
    assert light[-1] == "all"  # LightGCN's fast recipe applies to every dataset
    assert rows["ultragcn"].split()[-1] == "ml-1m" and "CIKM 2021" in rows["ultragcn"]
    assert rows["dagnn"].split()[:3] == ["dagnn", "node", "DAGNN"] and "KDD 2020" in rows["dagnn"]
    assert "cora, citeseer, pubmed" in rows["dagnn"] and rows["dagnn"].split()[-1] == "-"
    assert rows["popularity"].split()[-3:] == ["-", "-", "-"]  # no paper, no preset, no fast recipe


def test_models_list_json_is_a_list_of_objects():
    res = run("models", "list", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert isinstance(data, list) and all(isinstance(d, dict) for d in data)
    by_name = {d["name"]: d for d in data}
    assert sorted(by_name) == graphkit.models.available_models()
    for name in ("lightgcn", "ultragcn", "dagnn", "gcn", "catgcn", "largegt", "popularity", "als", "ease"):
        assert name in by_name
    fields = {"name", "task", "class_path", "paper", "authors", "venue", "year", "url", "presets", "fast_presets",
              "fast_preset"}
    for d in data:
        assert set(d) == fields and d["task"] in ("recommendation", "node", "graph")
        module, _, qualname = d["class_path"].rpartition(".")
        assert getattr(sys.modules[module], qualname) is graphkit.models.get_model(d["name"])
    assert by_name["lightgcn"]["task"] == "recommendation" and by_name["dagnn"]["task"] == "node"
    assert by_name["gin"]["task"] == "graph" and by_name["gcn-graph"]["task"] == "graph"
    assert by_name["gin"]["year"] == 2019 and "ogbg-molbace" in by_name["gin"]["presets"]
    assert by_name["lightgcn"]["fast_preset"] is True and by_name["lightgcn"]["fast_presets"] == ["*"]
    assert by_name["ultragcn"]["fast_presets"] == ["ml-1m"] and by_name["dagnn"]["fast_preset"] is False
    assert by_name["lightgcn"]["presets"] == ["gowalla", "yelp2018", "amazon-book", "ml-1m"]
    assert (by_name["dagnn"]["venue"], by_name["dagnn"]["year"]) == ("KDD", 2020)
    assert by_name["dagnn"]["paper"] == "Towards Deeper Graph Neural Networks"
    assert by_name["gcn"]["authors"] == "Kipf and Welling" and by_name["gcn"]["year"] == 2017
    assert by_name["ultragcn"]["url"] == "https://arxiv.org/abs/2110.15114"
    assert (by_name["largegt"]["venue"], by_name["largegt"]["year"]) == ("arXiv", 2023)
    assert by_name["popularity"]["paper"] is None and by_name["popularity"]["year"] is None


def test_model_info_of_a_custom_model_without_citation(monkeypatch):
    class Mine(graphkit.models.NodeModel):
        pass

    monkeypatch.setitem(graphkit.models._REGISTRY, "mine", Mine)
    info = graphkit.models.model_info("MINE")
    assert info.name == "mine" and info.task == "node" and info.class_path.endswith(".Mine")
    assert (info.paper, info.authors, info.venue, info.year, info.url) == (None,) * 5  # not the base class's doc
    assert info.presets == () and info.fast_presets == ()
    res = run("models", "list")
    assert res.exit_code == 0 and _rows(res.output)["mine"].split()[:3] == ["mine", "node", "Mine"]


def test_models_list_errors_are_one_line(monkeypatch):
    def boom(name):
        raise ConfigError(f"cannot describe {name}")

    monkeypatch.setattr(graphkit.models, "model_info", boom)
    res = run("models", "list")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert [line for line in res.output.splitlines() if line.strip()] == ["error: cannot describe als"]


# ----------------------------------------------------------------------------- lazy imports
def test_help_does_not_import_torch():
    """A behavioural proxy for a fast ``graphkit --help``: torch (and numpy) are never imported."""
    proc = python("""
        import io, sys
        from contextlib import redirect_stdout
        from graphkit.cli import main
        for argv in (["--help"], ["fit", "--help"], ["bench", "--help"], ["tune", "--help"],
                     ["datasets", "--help"], ["datasets", "list", "--help"], ["models", "list", "--help"]):
            buf = io.StringIO()
            try:
                with redirect_stdout(buf):
                    main(argv)
            except SystemExit as exc:
                assert exc.code in (0, None), (argv, exc.code)
            assert "Usage:" in buf.getvalue(), argv
            if argv == ["--help"]:
                assert "models" in buf.getvalue() and "datasets" in buf.getvalue()
        print(sorted(m for m in ("torch", "numpy", "scipy", "pandas") if m in sys.modules))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


def test_import_graphkit_is_lazy_and_every_public_name_resolves():
    proc = python("""
        import sys
        import graphkit
        assert "torch" not in sys.modules, "import graphkit imported torch"
        names = ["fit", "FitResult", "tune", "TuneResult", "Graph", "spmm", "Recommender", "leave_last_out",
                 "temporal_split", "LightGCN", "UltraGCN", "GCN", "DAGNN", "CatGCN", "LargeGT", "ConfigError",
                 "GraphkitError", "datasets", "metrics", "utils", "feature_store", "sampling", "w2pgnn", "models",
                 "training", "tuning", "recommender", "graph", "exceptions"]
        listed = dir(graphkit)
        assert set(names) <= set(listed), sorted(set(names) - set(listed))
        assert set(graphkit.__all__) <= set(listed)
        from graphkit import fit, Graph, Recommender, LightGCN
        import graphkit.training, graphkit.graph, graphkit.recommender, graphkit.models
        assert fit is graphkit.fit is graphkit.training.fit
        assert Graph is graphkit.Graph is graphkit.graph.Graph
        assert Recommender is graphkit.recommender.Recommender and LightGCN is graphkit.models.LightGCN
        assert graphkit.tune is graphkit.tuning.tune and graphkit.FitResult is graphkit.training.FitResult
        assert callable(graphkit.datasets.load) and graphkit.w2pgnn.__name__ == "graphkit.w2pgnn"
        assert graphkit.models.get_model("ultragcn") is graphkit.UltraGCN
        assert "torch" in sys.modules
        try:
            graphkit.no_such_name
        except AttributeError as exc:
            assert "no_such_name" in str(exc)
        else:
            raise AssertionError("graphkit.no_such_name resolved")
        ns = {}
        exec("from graphkit import *", ns)
        assert {"fit", "Graph", "Recommender", "datasets", "LightGCN"} <= set(ns)
        print("ok")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_get_model_finds_every_model_after_a_lazy_import():
    """Model registration still happens before it is needed: the registry is complete the first
    time ``graphkit.models`` is read from a lazily imported ``graphkit``."""
    proc = python("""
        import sys
        import graphkit
        assert "graphkit.models" not in sys.modules
        print(",".join(graphkit.models.available_models()))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(",") == graphkit.models.available_models()
