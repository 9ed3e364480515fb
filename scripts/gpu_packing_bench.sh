#!/usr/bin/env bash
# Several jobs per GPU, measured: on a machine with an NVIDIA GPU, a CUDA toolkit and a Python PyTorch
# (whose CUDA LibTorch we build against, as scripts/device_check.sh does), in one call:
#   1. builds mhim_gpu_jobs (jobs on one device, no MPI);
#   2. writes a CAMELYON-sized stand-in (270 slides of 7,000-9,000 x 1024 instances) packed as f16;
#   3. epoch seconds of ABMIL, TransMIL and MHIM(ABMIL) alone on the GPU, beside the reference's
#      PyTorch loop (scripts/reference_bench.py --device cuda) on bags of the same shape;
#   4. jobs per hour with K = 1, 2, 4, 8 processes sharing the GPU (what `mhim sweep --jobs-per-gpu K`
#      runs), each process running JOBS jobs of 2 epochs of ABMIL;
#   5. the numbers `mhim plan` assumes until measured: the GPU speed-up over the cost table's
#      one-thread CPU rows (--gpu-speedup) and the share of the GPU one job keeps busy (--gpu-busy).
#
#   scripts/gpu_packing_bench.sh [OUT_DIR]     env: BAGS (270), JOBS (2 per process), KS ("1 2 4 8")
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/gpu-packing}}
mkdir -p "$out"
bags=${BAGS:-270}
jobs=${JOBS:-2}
ks=${KS:-1 2 4 8}
deps=${DEPS_ROOT:-$PWD/.devdeps/root}
log() { echo "== $*"; }

log "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
nproc
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)') || exit 10
export PATH=/usr/local/cuda/bin:$PATH
log "build mhim_gpu_jobs (CUDA LibTorch from $torch_prefix)"
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DMIL_CORE_ONLY=ON -DMIL_WITH_HDF5=AUTO \
  -DMIL_WITH_NCCL=OFF -DMIL_USE_CCACHE=OFF -DMIL_BUILD_TESTS=OFF "-DCMAKE_PREFIX_PATH=$torch_prefix;$deps/usr" \
  -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 10; }
cmake --build build-cuda --parallel "$(nproc)" --target mhim_gpu_jobs >"$out/build.log" 2>&1 ||
  { grep -E "error" "$out/build.log" | head -30; exit 11; }
export LD_PRELOAD=$(g++ -print-file-name=libstdc++.so.6)  # see device_check.sh
bin=build-cuda/worker/mhim_gpu_jobs
data=$out/camelyon-standin

log "stand-in: $bags slides of 7,000-9,000 x 1024, packed f16"
[[ -f $data/packed.milpack ]] || /usr/bin/time -f "%e s" "$bin" synth --out "$data" --bags "$bags" || exit 12
rm -rf "$data/pt_files"  # the packed cache is what the jobs read

mhim_options='{"baseline": "attn", "attn2score": true, "mask_ratio_h": 0.03, "merge": true, "merge_ratio": 0.8, "merge_k": 5, "merge_mm": 0.9999, "aux_alpha": 0.5}'
log "epoch seconds alone on the GPU (3 epochs; the first is a warm-up)"
for model in abmil transmil mhim; do
  options='{}'; [[ $model == mhim ]] && options=$mhim_options
  "$bin" run --dataset "$data" --model "$model" --options "$options" --epochs 3 --device cuda:0 --jobs 1 \
    | tee -a "$out/alone.jsonl"
done
log "the reference's PyTorch loop on the same GPU, bags of the same shape"
python3 scripts/reference_bench.py --device cuda --models abmil,transmil,mhim --precision fp32 --epochs 2 \
  --bags "$bags" --min-instances 7000 --max-instances 9000 | tee "$out/reference.txt"

log "jobs per hour with K processes on one GPU ($jobs ABMIL jobs of 2 epochs each)"
for k in $ks; do
  start=$(date +%s.%N)
  for ((i = 0; i < k; ++i)); do
    "$bin" run --dataset "$data" --model abmil --epochs 2 --device cuda:0 --jobs "$jobs" --seed $((100 * i + 1)) \
      --threads $(( $(nproc) / k > 0 ? $(nproc) / k : 1 )) >"$out/k$k-$i.jsonl" &
  done
  wait
  end=$(date +%s.%N)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader | head -1 >"$out/k$k-memory.txt"
  python3 -c "import sys; k, j, s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]); \
print(f'K={k}: {k * j} jobs in {s:.1f} s = {3600 * k * j / s:.1f} jobs/hour')" "$k" "$jobs" "$(python3 -c "print($end - $start)")" \
    | tee -a "$out/packing.txt"
done

log "what mhim plan assumes until this has run"
python3 - "$out" "$bags" <<'PY'
import json, statistics, sys, re
out, bags = sys.argv[1], int(sys.argv[2])
instances = bags * 8000
# The cost table's one-thread CPU training seconds per instance (orchestrator/schedule/cost_table.cpp).
cpu = {"abmil": 0.871 / 18840, "transmil": 10.030 / 18840, "mhim": 1.444 / 18840}
print("model     GPU s/epoch   CPU-table s/epoch   speed-up")
for line in open(f"{out}/alone.jsonl"):
    r = json.loads(line)
    gpu = statistics.median(r["epoch_seconds"][1:] or r["epoch_seconds"])
    # A training epoch covers 4/5 of the bags (fold 0 of 5, no validation).
    table = cpu[r["model"]] * instances * 4 / 5
    print(f"{r['model']:9} {gpu:11.2f}   {table:17.1f}   {table / gpu:8.1f}x   (--gpu-speedup)")
rates = {}
for line in open(f"{out}/packing.txt"):
    m = re.match(r"K=(\d+): .* = ([\d.]+) jobs/hour", line)
    if m: rates[int(m.group(1))] = float(m.group(2))
if 1 in rates:
    best = max(rates.values())
    # K jobs each at min(1, 1/(K x busy)) of lone speed: throughput saturates at 1/busy x K=1's.
    print(f"jobs/hour: {rates}; saturates at {best / rates[1]:.2f}x K=1 -> --gpu-busy {rates[1] / best:.2f}")
PY
log "done; files in $out"
