# Two entry points for a fresh machine (README): `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo test lint clean

$(BIN)/ltdistill: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel (no CUDA, no torchvision)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/ltdistill

# The main job on the embedded default: digits-LT (beta 10), Random and Herding at IPC 10, then the full-LT reference.
demo: install
	rm -rf runs/demo
	$(BIN)/ltdistill datasets
	$(BIN)/ltdistill distill --method random  --dataset digits --imbalance 10 --ipc 10 --out runs/demo/random
	$(BIN)/ltdistill distill --method herding --dataset digits --imbalance 10 --ipc 10 --out runs/demo/herding
	$(BIN)/ltdistill evaluate runs/demo/random  --runs 3 --json runs/demo/random.json
	$(BIN)/ltdistill evaluate runs/demo/herding --runs 3 --json runs/demo/herding.json
	$(BIN)/ltdistill evaluate --full --dataset digits --imbalance 10 --epochs 100 --runs 3 --json runs/demo/full.json
	@echo; $(BIN)/ltdistill table runs/demo/full.json runs/demo/random.json runs/demo/herding.json
	$(BIN)/ltdistill report runs/demo   # runs/demo/report/index.md: image grids, per-class bars

test: install
	$(BIN)/ruff check src tests benchmarks
	# one pytest worker per core (pytest-xdist); conftest gives each worker, and what it starts, one thread
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto tests

clean:
	rm -rf $(VENV) runs/demo
