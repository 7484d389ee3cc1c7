#!/usr/bin/env bash
# Several bench suites side by side on one GPU inside a time limit, each in OUT_ROOT/<suite>; stopped after LIMIT
# seconds, what finished is packed for the trip back, checkpoints included (a partly trained observer keeps its
# epochs, a distillation its iterations), so a second call resumes. A piece is SUITE, SUITE:ONLY or SUITE:ONLY:JOBS
# (ONLY as bench --only takes it, empty for every cell; JOBS 2 by default). Keep the processes at about 7 in all:
# with 13 on one H200 no trajectory cell finished in 500 s.
# Usage: benchmarks/gpu_suites.sh OUT_ROOT PACK_DIR LIMIT_SECONDS PIECE...
#   e.g. benchmarks/gpu_suites.sh runs/gpu pack 540 fmnist-observers::3 fmnist-orders::4
set -u
root=${1:?run directories}; pack=${2:?where the packed results go}; limit=${3:?seconds}; shift 3
[ $# -gt 0 ] || { echo "give at least one suite" >&2; exit 2; }
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p "$root" "$pack"
start=$(date +%s)
for piece in "$@"; do
  IFS=: read -r suite only jobs <<<"$piece"
  mkdir -p "$root/$suite"
  timeout "$limit" python3 -m ltdistill.cli bench --suite "$suite" --out "$root/$suite" --device cuda --no-progress \
    --jobs "${jobs:-2}" ${only:+--only "$only"} >"$root/$suite/bench.log" 2>&1 &
done
wait
echo "pieces stopped after $(( $(date +%s) - start )) s"
for piece in "$@"; do
  suite=${piece%%:*}
  python3 -m ltdistill.cli bench --suite "$suite" --out "$root/$suite" --device cuda --plan | grep -v "to run"
done
# results, artifacts, checkpoints and logs, no expert weights, in parts of at most 15 MiB (the trip back takes 8
# files, 64 MiB in all)
tar czf - --exclude="$root/*/experts/*/*.safetensors" "$root" | split -b 15M - "$pack/results.tgz.part-"
ls -la "$pack"
