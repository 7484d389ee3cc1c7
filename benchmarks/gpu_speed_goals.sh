#!/usr/bin/env bash
# One GPU call for the speed goals only a GPU can measure, each benchmark alone on the device under its own time
# limit: N evaluation runs and K experts trained together against one after another, at the cpu protocol's width
# and the paper's (together_speed.py, each path trained for all its epochs in one call); and the unrolled student
# against the official pattern at the paper's width, eager float32 and on its faster paths (tm_speed.py: the unroll
# ops compiled, bfloat16 autocast, both), full unroll and constant-memory gradient; then where the time goes on the
# device (profile_roofline.py: each family's profile, and the FLOP/s of an evaluation epoch, an MTT and a DC iteration
# against the device's matmul rate), MTT replaying a small standard buffer trained here first. About 8 minutes in
# all (limits: TOGETHER_S, UNROLL_S, ROOFLINE_S); the JSON files come back in PACK_DIR.
# Usage: benchmarks/gpu_speed_goals.sh RUN_DIR PACK_DIR
#   e.g. PYTHONPATH=src LTDISTILL_DATA=.data bash benchmarks/gpu_speed_goals.sh runs/gpu $OUT
# (DEVICE=cpu runs the same calls on a CPU, for a check of the script only: its numbers are not the GPU's.)
set -u
root=${1:?run directory}; pack=${2:?where the results go}; device=${DEVICE:-cuda}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
[ "$device" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
mkdir -p "$root/speed" "$pack"
start=$(date +%s)
speed() { local limit=$1; shift; local t0; t0=$(date +%s)
  timeout "$limit" python3 "$@" 2>&1 | grep -v Warning; echo "[$(( $(date +%s) - t0 )) s] $*"; }
for width in 32 128; do
  speed "${TOGETHER_S:-50}" benchmarks/together_speed.py --device "$device" --width $width \
    --out "$root/speed/together-$device-w$width.json"
done
for ipc in 10 50; do
  speed "${UNROLL_S:-100}" benchmarks/tm_speed.py --device "$device" --width "${WIDTH:-128}" --ipcs $ipc \
    --steps "${STEPS:-10,20,40}" --repeats "${REPEATS:-3}" --out "$root/speed/tm-$device-w${WIDTH:-128}-ipc$ipc.json" \
    --impls "ltdistill full_bptt,ltdistill full_bptt compiled,ltdistill full_bptt bfloat16,ltdistill full_bptt compiled bfloat16,ltdistill tesla_frozen_weights,ltdistill tesla_frozen_weights bfloat16,reference-style full unroll"
done
buffer="$root/experts-b100"  # 2 experts of 12 epochs: MTT's preset window (start epoch < 10, 2 epochs matched)
timeout 60 python3 -m ltdistill.cli experts --dataset fashion-mnist --imbalance 100 --protocol cpu \
  --convnet-stem official --num 2 --epochs 12 --device "$device" --no-progress --out "$buffer" 2>&1 | tail -2
speed "${ROOFLINE_S:-130}" benchmarks/profile_roofline.py --device "$device" --experts "$buffer" \
  --model-cache "$root/models" --iterations 5 --dc-iterations 2 --out "$root/speed/profile-$device.json"
echo "all stopped after $(( $(date +%s) - start )) s"
cp "$root"/speed/*.json "$pack"/
ls -la "$pack"
