#!/usr/bin/env bash
# The `fmnist-observers` suite on one GPU inside a time limit: SRe2L with the ResNet-18-BN observer (the SRe2L
# paper's network; about a day of one CPU core) and the width-128 ConvNet-BN one, with the Random cell their
# relabeled baselines need, side by side on one --out; stopped after LIMIT seconds, what finished packed for the trip
# back, checkpoints included (a partly trained observer keeps its epochs), so a second call resumes.
# Usage: benchmarks/fmnist_gpu_observers.sh OUT_DIR PACK_DIR [LIMIT_SECONDS]
set -u
out=${1:?run directory}; pack=${2:?where the packed results go}; limit=${3:-500}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p "$out" "$pack"
start=$(date +%s)
timeout "$limit" python3 -m ltdistill.cli bench --suite fmnist-observers --out "$out" --device cuda --no-progress \
  --jobs 3 >"$out/bench.log" 2>&1
echo "bench stopped after $(( $(date +%s) - start )) s"
python3 -m ltdistill.cli bench --suite fmnist-observers --out "$out" --device cuda --plan | grep -v "to run"
tar czf - "$out" | split -b 15M - "$pack/results.tgz.part-"
ls -la "$pack"
