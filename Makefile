# Two commands set up everything from a fresh clone: `make demo` and `make test`.
# The venv gets the test, bench and ann extras (pytest, hypothesis, cornac, implicit, faiss-cpu...): the
# peer benchmark's metric-agreement tests and the ANN tests run in `make test`; no extra is a runtime dependency.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision pinned to the releases this project is tested with (CPU or CUDA build).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.mmrec-installed
# --no-cache-dir: the CUDA build of torch pulls ~3 GB of nvidia wheels from PyPI; caching them as well as
# installing them doubles the disk a fresh clone needs (CI once failed with "No space left on device").

.PHONY: install test test-fast demo bench bench-peers clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-cache-dir --upgrade pip
	$(PY) -m pip install -q --no-cache-dir $(TORCH_SPEC)
	$(PY) -m pip install -q --no-cache-dir -e ".[test,bench,ann]"
	touch $(STAMP)

install: $(STAMP)

# --durations lists the slowest tests, so a test that grows slow is seen when it happens.
test: $(STAMP)
	$(PY) -m pytest -q --durations=15 tests

# The inner loop: everything except the end-to-end tests marked slow.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

demo: $(STAMP)
	$(VENV)/bin/mmrec demo

bench: $(STAMP)
	$(PY) bench/preprocess_bench.py
	$(PY) bench/features_bench.py
	$(PY) bench/train_bench.py
	$(PY) bench/eval_bench.py
	$(PY) bench/item_item_bench.py

bench-peers: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) bench/run_peers.py
	OMP_NUM_THREADS=1 $(PY) bench/ablation.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
