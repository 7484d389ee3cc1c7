#!/usr/bin/env bash
# The `fmnist` suite's cells that the 2-core CPU cannot afford, on one GPU inside a time limit: three `ltdistill
# bench` pieces side by side on one --out (they wait for each other at shared expert buffers through the bench's
# file locks), stopped after LIMIT seconds; what finished is packed for the trip back, checkpoints included, so a
# second call resumes. The pieces: DC at all six settings (about 3.5 hours a cell on one CPU core, no experts
# needed), the IPC-50 trajectory cells the CPU has not run (MTT and DATM at beta 100, LTDD at beta 50 and 10; they
# train three expert buffers first, 2-3 minutes on the H200), and the full-set references at beta 50 and 10 with
# the Random cells (DD-Ranking's baselines). At most 7 processes share the GPU: with 13 (the first H200 try) no
# trajectory cell finished in 500 s. docs/results.md says which cells finished.
# Usage: benchmarks/fmnist_gpu_pieces.sh OUT_DIR PACK_DIR [LIMIT_SECONDS]
set -u
out=${1:?run directory}; pack=${2:?where the packed results go}; limit=${3:-500}
cells() { local m ipcs=$1 betas=$2; shift 2; for m in "$@"; do for b in $betas; do for i in $ipcs; do
  printf '%s_fashion-mnist_b%s_ipc%s_s0,' "$m" "$b" "$i"; done; done; done; }
dc="$(cells '10 50' '100 50 10' dc)"
ipc50="$(cells 50 100 mtt datm)$(cells 50 '50 10' ltdd)"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
bench() { timeout "$limit" python3 -m ltdistill.cli bench --suite fmnist --out "$out" --device cuda --no-progress \
  "${@}"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
mkdir -p "$out" "$pack"
start=$(date +%s)
bench --only full_fashion-mnist_b50,full_fashion-mnist_b10,random --jobs 2 >"$out/piece-full.log" 2>&1 &
bench --only "${dc%,}" --jobs 3 >"$out/piece-dc.log" 2>&1 &
bench --only "${ipc50%,}" --jobs 2 >"$out/piece-ipc50.log" 2>&1 &
wait
echo "pieces stopped after $(( $(date +%s) - start )) s"
python3 -m ltdistill.cli bench --suite fmnist --out "$out" --device cuda --plan | grep -v "to run"
# results, artifacts, checkpoints (a later call or the CPU resumes them) and logs, no expert weights, in parts of at
# most 15 MiB; then the expert buffers the CPU still needs (the trip back takes 8 files, 16 MiB each, 64 MiB in all)
tar czf - --exclude="$out/experts/*/*.safetensors" "$out" | split -b 15M - "$pack/results.tgz.part-"
for name in standard-b100 decoupled-b50 decoupled-b10; do
  dir=$(ls -d "$out"/experts/"$name"-* 2>/dev/null | head -1)
  [ -n "$dir" ] && [ -f "$dir/accuracy.json" ] || continue
  used=$(du -sm "$pack" | cut -f1); need=$(du -sm "$dir" | cut -f1); files=$(ls "$pack" | wc -l)
  (( used + need < 60 && files + need / 15 + 1 <= 8 )) && tar cf - "$dir" | split -b 15M - "$pack/$name.tar.part-"
done
ls -la "$pack"
