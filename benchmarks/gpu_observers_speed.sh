#!/usr/bin/env bash
# One GPU call of a 15-minute device budget, in two parts. First the `fmnist-observers` suite (SRe2L with the
# width-128 ConvNet-BN, ResNet-18-BN and its quarter-width twin as observers), every cell at once, stopped after
# OBS_SECONDS: the width-128 and full ResNet-18-BN observers take hours on one CPU core. Then, alone on the GPU, the
# speed benchmarks whose GPU side only a GPU can give: N evaluation runs and K experts trained together against one
# after another (together_speed.py), the unrolled student against the official pattern at the paper's width
# (tm_speed.py), evaluation training and the unroll ops compiled (compile_speed.py), each under its own time
# limit. Results (and the suite's cell directories, without files over 8 MB) come back as one archive.
# Usage: benchmarks/gpu_observers_speed.sh RUN_DIR PACK_DIR [OBS_SECONDS]
#   e.g. PYTHONPATH=src LTDISTILL_DATA=.data bash benchmarks/gpu_observers_speed.sh runs/gpu $OUT 270
set -u
root=${1:?run directory}; pack=${2:?where the archive goes}; obs=${3:-270}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
mkdir -p "$root/observers" "$root/speed" "$pack"
start=$(date +%s)
timeout "$obs" python3 -m ltdistill.cli bench --suite fmnist-observers --out "$root/observers" --device cuda \
  --no-progress --jobs 4 >"$root/observers/bench.log" 2>&1
echo "observers stopped after $(( $(date +%s) - start )) s"
python3 -m ltdistill.cli bench --suite fmnist-observers --out "$root/observers" --device cuda --plan
speed() { local limit=$1; shift; local t0; t0=$(date +%s)
  timeout "$limit" python3 "$@" 2>&1 | grep -v Warning; echo "[$(( $(date +%s) - t0 )) s] $*"; }
for width in 32 128; do
  speed 55 benchmarks/together_speed.py --device cuda --width $width --out "$root/speed/together-cuda-w$width.json"
done
speed 50 benchmarks/tm_speed.py --device cuda --width 128 --ipcs 10,50 --steps 10,20,40 --repeats 3 \
  --malloc default --out "$root/speed/tm-cuda-w128.json"
speed 80 benchmarks/compile_speed.py --device cuda --epochs-small 20 --out "$root/speed/compile-cuda.json"
speed 90 benchmarks/compile_speed.py --device cuda --unroll 20 --ops-only --repeats 3 --width 128 --ipc 10 \
  --out "$root/speed/compile-cuda-unroll-ops.json"
echo "all stopped after $(( $(date +%s) - start )) s"
find "$root" -type f -size +8M -print >"$root/left-out.txt"
tar czf "$pack/gpu.tgz" -X "$root/left-out.txt" "$root"
ls -la "$pack"
