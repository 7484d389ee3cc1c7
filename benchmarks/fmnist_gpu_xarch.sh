#!/usr/bin/env bash
# The `fmnist` suite's GPU work that is left once the CPU grid stands, in one call under a time limit, two `ltdistill
# bench` pieces side by side on one --out:
#  1. cross-architecture on AlexNet, VGG-11 and ResNet-18 (the uni-level paper's set; 300 epochs of them cost 1.5-3.5
#     hours a run on one core) at beta 100 IPC 50: Random, Herding, DM, SRe2L and uni-level distilled anew on the
#     GPU (minutes each there; these cells' keys hold no device, so they are the CPU grid's cells), and the sets
#     made on the CPU that the caller puts in OUT_DIR/cpu-cells/<cell> (their cell directories, artifact inside),
#     evaluated with the bench's own evaluate command into the JSON names the bench reads, so that
#     `bench --out <cpu run> --only <cell> --cross-arch ...` folds them into the CPU result without running them
#     again (written when a trajectory cell's key held its expert command, device and path included, so the GPU
#     bench did not take it as the CPU's; since 2026-11 it does: copy the cell directory and its result into OUT
#     and `--cross-arch` evaluates it like the others);
#  2. the DC cells the CPU has not run (beta 10 IPC 10; IPC 50 at every beta: about 3.5 hours each on one core).
# What finished is packed for the trip back, checkpoints included, so the CPU or a later call resumes the rest.
# Usage: benchmarks/fmnist_gpu_xarch.sh OUT_DIR PACK_DIR [LIMIT_SECONDS]
set -u
out=${1:?run directory}; pack=${2:?where the packed results go}; limit=${3:-480}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
bench() { timeout "$limit" python3 -m ltdistill.cli bench --suite fmnist --out "$out" --device cuda --no-progress "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
mkdir -p "$out" "$pack"
start=$(date +%s)
xarch=random,herding,dm,sre2l,unilevel
models="alexnet vgg11 resnet18"
bench --only "$(echo $xarch | sed 's/\([a-z0-9]*\)/\1_fashion-mnist_b100_ipc50_s0/g')" --jobs 3 \
  --cross-arch "${models// /,}" >"$out/piece-xarch.log" 2>&1 &
for cell in "$out"/cpu-cells/*/; do for m in $models; do  # as the bench's evaluation_json: the JSON appears by rename
  [ -f "$cell/eval-model-$m.json" ] && continue
  left=$(( start + limit - $(date +%s) )); (( left > 0 )) || break 2  # (timeout 0 would mean no limit)
  timeout "$left" python3 -m ltdistill.cli evaluate "$cell/artifact" --model "$m" --runs 3 \
    --protocol cpu --device cuda --no-progress --json "$cell/.eval-model-$m.json" --runs-dir "$cell/.eval-model-$m-runs" \
    && mv "$cell/.eval-model-$m.json" "$cell/eval-model-$m.json"
done; done >"$out/piece-cpu-cells.log" 2>&1 &
bench --only dc_fashion-mnist_b10_ipc10_s0,dc_fashion-mnist_b100_ipc50_s0,dc_fashion-mnist_b50_ipc50_s0,dc_fashion-mnist_b10_ipc50_s0 \
  --jobs 4 >"$out/piece-dc.log" 2>&1 &
wait
echo "pieces stopped after $(( $(date +%s) - start )) s"
python3 -m ltdistill.cli bench --suite fmnist --out "$out" --device cuda --cross-arch "${models// /,}" --plan \
  | grep -v "to run\|to train"
tar czf - "$out" | split -b 15M - "$pack/results.tgz.part-"
ls -la "$pack"
