#!/usr/bin/env bash
# CPU speed measurements kept in docs/data/ (run on an otherwise idle machine; timings under load are meaningless).
#   bash benchmarks/cpu_speed.sh
set -euo pipefail
art=runs/speed/fashion-mnist-b100-random-ipc50  # Random IPC 50 at beta 100: seconds to make, the set every timing uses
[ -f "$art/meta.json" ] || ltdistill distill --method random --dataset fashion-mnist --imbalance 100 --ipc 50 \
  --out "$art" --no-progress
mkdir -p docs/data/tm-speed
# evaluation at the paper's 1000 epochs, cpu protocol (ConvNet width 32)
ltdistill evaluate "$art" --runs 1 --epochs 1000 --no-progress \
  --json docs/data/eval-speed-cpu-fmnist-ipc50-w32-1000ep.json
# paper protocol (width 128): 50 epochs measured; the per-epoch cost is constant, so 1000 epochs = 20x
ltdistill evaluate "$art" --runs 1 --epochs 50 --protocol paper --no-progress \
  --json docs/data/eval-speed-cpu-fmnist-ipc50-w128-50ep.json
python benchmarks/tm_speed.py --device cpu --width 32 --repeats 1 --out docs/data/tm-speed/cpu-2core-w32.json
