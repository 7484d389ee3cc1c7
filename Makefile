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

# The main job on the embedded default, digits-LT (beta 10), IPC 10: Random, Herding, DM and LTDD (on a small
# decoupled expert buffer), each evaluated like the full long-tailed set (3 runs, 300 epochs), then the table and
# the report (runs/demo/report/index.md: image grids, per-class bars, loss curves).
DEMO := $(BIN)/ltdistill
DATA := --dataset digits --imbalance 10
demo: install
	rm -rf runs/demo
	$(DEMO) datasets
	$(DEMO) experts $(DATA) --decoupled --num 3 --epochs 45 --cls-epochs 5 --out runs/demo/experts
	$(DEMO) distill --method random  $(DATA) --ipc 10 --out runs/demo/random
	$(DEMO) distill --method herding $(DATA) --ipc 10 --out runs/demo/herding
	$(DEMO) distill --method dm      $(DATA) --ipc 10 --set iterations=300 --out runs/demo/dm
	$(DEMO) distill --config configs/ltdd/digits-lt-b10-ipc10-tuned.toml --experts runs/demo/experts --out runs/demo/ltdd
	for m in random herding dm ltdd; do $(DEMO) evaluate runs/demo/$$m --runs 3 --json runs/demo/$$m.json || exit 1; done
	$(DEMO) evaluate --full $(DATA) --runs 3 --json runs/demo/full.json
	@echo; $(DEMO) table runs/demo/full.json runs/demo/random.json runs/demo/herding.json runs/demo/dm.json runs/demo/ltdd.json
	$(DEMO) report runs/demo

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	# one pytest worker per core (pytest-xdist; worksteal: an idle worker takes tests queued on a busy one, so the
	# long ones at the end do not leave a core idle); conftest gives each worker, and what it starts, one thread
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist worksteal tests

clean:
	rm -rf $(VENV) runs/demo
