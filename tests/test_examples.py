"""The runnable examples run: the quickstart notebook (executed with nbclient) and every script in
``examples/`` in its quick mode, each in a fresh process.

Scripts that need dataset files are skipped when ``$GRAPHKIT_DATA`` lacks them; the notebook is
skipped when nbclient / nbformat / ipykernel (the ``test`` extra) are not installed.  The assertions
check each script's printed results, not only its exit status.  Slow ones (> ~20 s on 2 busy cores)
are marked ``slow``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from conftest import require_dataset

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

CORA = ("planetoid", "raw", "ind.cora.x")
ML1M = ("ml-1m", "train.txt")


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_example(script: str, args: Sequence[str] = (), timeout: float = 240) -> str:
    """Run ``examples/<script>`` and return its stdout; fail with its output on a non-zero exit."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          env=_env(), timeout=timeout, cwd=str(ROOT))
    assert proc.returncode == 0, f"{script} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    print(f"{script}: {time.perf_counter() - t0:.1f}s")
    return proc.stdout


def metric(out: str, name: str) -> float:
    """The last ``name=value`` printed."""
    found = re.findall(rf"{re.escape(name)}=([0-9.]+)", out)
    assert found, f"{name} not printed:\n{out}"
    return float(found[-1])


def test_every_script_has_a_test():
    tested = {"lightgcn_ml1m.py", "ultragcn_ml1m.py", "gcn_cora.py", "dagnn_cora.py", "catgcn_synthetic.py",
              "selftask_cora.py", "largegt_synthetic.py", "w2pgnn_synthetic.py", "recommender_pipeline_ml1m.py",
              "gin_molecules.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
    for path in EXAMPLES.glob("*.py"):
        head = path.read_text().split('"""')[1]
        assert "python examples/" + path.name in head, f"{path.name}: its docstring shows no command line"


# --------------------------------------------------------------------------- models
def test_lightgcn_example():
    require_dataset(*ML1M)
    out = run_example("lightgcn_ml1m.py", ["--epochs", "5"])
    assert "valid_recall@20" in out
    assert 0.05 < metric(out, "recall@20") < 1.0
    assert 0.05 < metric(out, "ndcg@20") < 1.0


def test_ultragcn_example():
    require_dataset(*ML1M)
    out = run_example("ultragcn_ml1m.py", ["--epochs", "3"])
    assert 0.03 < metric(out, "recall@20") < 1.0


def test_gcn_example():
    require_dataset(*CORA)
    out = run_example("gcn_cora.py")
    assert "public split" in out
    assert metric(out, "accuracy") > 0.75


def test_dagnn_example():
    require_dataset(*CORA)
    out = run_example("dagnn_cora.py", ["--epochs", "150"])
    assert metric(out, "accuracy") > 0.75
    scores = re.findall(r"node \d+: ((?:[0-9.]+ ?)+)", out)
    assert len(scores) == 3 and all(len(s.split()) == 11 for s in scores)  # hops 0..K, K = 10


def test_catgcn_example_beats_its_baseline_on_interactions():
    out = run_example("catgcn_synthetic.py", ["--epochs", "120"])
    acc = {m: float(a) for m, a in re.findall(r"^(\w+)\s+test accuracy ([0-9.]+)%", out, flags=re.M)}
    assert set(acc) == {"CatGCN", "FieldSumGCN"}, out
    assert acc["CatGCN"] > acc["FieldSumGCN"] + 5, out


def test_selftask_example():
    require_dataset(*CORA)
    out = run_example("selftask_cora.py", ["--epochs", "60", "--pretext", "edge_mask"])
    accs = [float(a) for a in re.findall(r"test accuracy ([0-9.]+)%", out)]
    assert len(accs) == 3 and all(a > 60 for a in accs), out


def test_largegt_example():
    out = run_example("largegt_synthetic.py", ["--epochs", "20"])
    assert "feature store: MemMapStore" in out
    assert metric(out, "accuracy") > 0.5  # 4 classes: chance is 0.25
    tokens = re.search(r"token sequence of node 0 \(K = (\d+)\): \[([0-9, ]+)\]", out)
    assert tokens and len(tokens.group(2).split(",")) == int(tokens.group(1))
    assert tokens.group(2).split(",")[0] == "0"


def test_gin_molecules_example_pretrains_and_fine_tunes():
    require_dataset("ogb", "ogbg_molfreesolv", "raw", "edge.csv.gz")
    out = run_example("gin_molecules.py", ["--dataset", "ogbg-molfreesolv", "--emb-dim", "16", "--epochs", "3",
                                           "--pretrain-epochs", "1", "--threads", "1"])
    assert "scaffold" in out or "train/valid/test=513/64/65" in out
    scores = re.findall(r"test rmse=([0-9.]+)", out)
    assert len(scores) == 2 and all(0.5 < float(s) < 20 for s in scores), out
    assert "pre-trained attr_masking on ogbg-molbace+ogbg-molbbbp+ogbg-molesol" in out


def test_w2pgnn_example_ranks_the_unrelated_set_last(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "w2pgnn.png"
    out = run_example("w2pgnn_synthetic.py", ["--graphs", "30", "--plot", str(plot)])
    scores = {name: float(s) for name, s in re.findall(r"^(\S+)\s+score ([-+0-9.e]+)", out, flags=re.M)}
    assert set(scores) == {"mixture", "sbm-like", "unrelated"}, out
    assert scores["unrelated"] < min(scores["mixture"], scores["sbm-like"])
    weights = re.search(r"^mixture .*weights: domain sbm ([0-9.]+), domain power-law ([0-9.]+)", out, flags=re.M)
    assert weights and abs(float(weights.group(1)) - 0.5) < 0.2, out
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_recommender_pipeline_example():
    require_dataset(*ML1M)
    out = run_example("recommender_pipeline_ml1m.py", ["--quick"])
    assert "recommendations identical to the in-process model: True" in out
    assert metric(out, "recall@20") > 0.02


# --------------------------------------------------------------------------- notebook
def _executed_notebook(path: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch):
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat (pip install -e '.[test]')")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs nbclient (pip install -e '.[test]')")
    pytest.importorskip("ipykernel", reason="the notebook test needs ipykernel (pip install -e '.[test]')")
    pytest.importorskip("matplotlib", reason="the notebook plots with matplotlib (pip install -e '.[plot]')")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel (python -m ipykernel install --user)")
    nb = nbformat.read(str(path), as_version=4)
    # the kernel inherits this process's environment: quiet threads, and matplotlib's inline backend
    for key in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "NUMBA_THREADING_LAYER"):
        monkeypatch.setenv(key, _env()[key])
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def _outputs(nb) -> List[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def test_quickstart_notebook_runs_and_plots(tmp_path, monkeypatch):
    require_dataset(*CORA)
    require_dataset(*ML1M)
    nb = _executed_notebook(EXAMPLES / "quickstart.ipynb", tmp_path, monkeypatch)
    outputs = _outputs(nb)
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the notebook should draw the two training-history figures"
    text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "FitResult(GCN, accuracy=" in text
    assert "'model.safetensors'" in text and "'record.json'" in text
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def test_notebook_is_stored_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(str(EXAMPLES / "quickstart.ipynb"), as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
