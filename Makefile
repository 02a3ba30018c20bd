# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates .venv (Python 3.11) and installs the package with what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= demo_output

.PHONY: demo test lint test-slow test-gpu bench venv clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: on these machines torch==2.13.0 is the CPU build on local disk;
	# the constraints file keeps every later install from pulling another (CUDA) build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/gempy-gravinv demo -o $(OUT) --overwrite

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow and not gpu" -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow" -q -p no:cacheprovider

test-gpu: $(STAMP)
	$(BIN)/python -m pytest -m "gpu" -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build *.egg-info
