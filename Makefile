# The two set-up commands a new user needs (see README):
#   make demo   installs graphkit and trains LightGCN on Gowalla with a short budget (<= 5 min on 2 CPU cores)
#   make test   installs graphkit with its test extras and runs the default test suite
PY ?= python3
# Dataset files: $GRAPHKIT_DATA if set, else ../shared/datasets when present, else ~/.cache/graphkit (downloads).
GRAPHKIT_DATA ?= $(shell if [ -d ../shared/datasets ]; then cd ../shared/datasets && pwd; fi)
export GRAPHKIT_DATA

.PHONY: install install-test demo demo-full test test-slow bench docs

# torch first: a CPU build pinned to 2.13.0 when no torch is present (a bare `torch`
# requirement would pull a multi-GB CUDA build); an existing torch is kept.
install:
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e .

install-test:
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"

demo: install
	$(PY) -m graphkit.cli fit lightgcn --dataset gowalla --preset fast --threads 2 --max-time 200 --out runs/lightgcn-gowalla-demo

demo-full: install
	$(PY) -m graphkit.cli fit lightgcn --dataset gowalla --out runs/lightgcn-gowalla

test: install-test
	$(PY) -m pytest -q

test-slow: install-test
	GRAPHKIT_SLOW=1 $(PY) -m pytest -q -m slow

bench: install
	$(PY) benchmarks/bench_lightgcn_step.py --threads 2
	$(PY) benchmarks/bench_eval.py

# The documentation site (mkdocs + material + mkdocstrings), strict: a broken reference fails the build.
docs:
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict
