#!/usr/bin/env bash
# Measures successive halving (docs/pruning.md) on the benchmark stand-ins: the v2 grid's MHIM models and
# 18-point grid (sweeps/mhim_v2_grid.yaml) on a subset of its datasets and aggregators, run once without
# pruning and once with it, each as P array-mode processes under /usr/bin/time, then compared by
# `mhim bench prune` (the replay on the full run, checked against the real pruning run).
#
#   scripts/prune_measure.sh                 # defaults below; about 1,000 CPU-seconds on this machine
#   DATASETS="camelyon-r50 tcga-brca-r50" AGGREGATORS="attn" EPOCHS=20 scripts/prune_measure.sh
#
# Environment: MHIM (binary, default build/app/mhim), OUT (default results/prune-measure), SCALE (0.05),
# DIM (32), EPOCHS (10), EMBED (128: model.options.embed_dim), ETA (3), PROCESSES (2),
# DATASETS (names in the v2 grid), AGGREGATORS (attn, selfattn, dsmil). Reruns skip finished jobs.
set -euo pipefail
cd "$(dirname "$0")/.."

mhim=${MHIM:-build/app/mhim}
out=${OUT:-results/prune-measure}
scale=${SCALE:-0.05}
dim=${DIM:-32}
epochs=${EPOCHS:-10}
embed=${EMBED:-128}
eta=${ETA:-3}
processes=${PROCESSES:-2}
datasets=${DATASETS:-camelyon-r50 tcga-nsclc-r50 tcga-luad-surv-r50}
aggregators=${AGGREGATORS:-attn dsmil}
grid=sweeps/mhim_v2_grid.yaml

mkdir -p "$out"
if [[ ! -f "$out/data/datasets.json" ]]; then
  "$mhim" synth --all --out "$out/data" --scale "$scale" --dim "$dim" >/dev/null
fi

# The subset, cut from the v2 grid line by line (one dataset or model entry per line there).
{
  echo "name: prune_measure"
  echo "datasets:"
  for d in $datasets; do grep -E "^  - \{name: $d," "$grid"; done
  echo "models:"
  for a in $aggregators; do grep -E "method: mhim-$a," "$grid"; done
  sed -n '/^train:/,$p' "$grid"
} >"$out/sweep.yaml"
overrides=(--set "train.epochs=$epochs")
for d in $datasets; do overrides+=(--set "datasets.$d.root=$out/data/$d"); done
m=0
for a in $aggregators; do
  overrides+=(--set "models.$m.options.embed_dim=$embed")
  m=$((m + 1))
done

# Runs the sweep into $1 with P array processes; prints their summed user + system CPU-seconds.
run_sweep() {
  local dir=$1
  shift
  local pids=()
  for ((p = 1; p <= processes; ++p)); do
    /usr/bin/time -f "%U %S" -o "$out/$(basename "$dir").time.$p" \
      "$mhim" sweep "$out/sweep.yaml" --array --results "$dir" --threads 1 "${overrides[@]}" "$@" \
      >"$out/$(basename "$dir").log.$p" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  awk '{cpu += $1 + $2} END {printf "%.1f", cpu}' "$out/$(basename "$dir")".time.*
  return $failed
}

"$mhim" sweep "$out/sweep.yaml" --dry-run "${overrides[@]}" | head -1
full_cpu=$(run_sweep "$out/full")
pruned_cpu=$(run_sweep "$out/pruned" --set "prune={\"method\": \"halving\", \"eta\": $eta}")
echo "process CPU-seconds (user + system of the $processes array processes, this run only):"
echo "  without pruning: $full_cpu"
echo "  with pruning:    $pruned_cpu"
"$mhim" bench prune --full "$out/full" --pruned "$out/pruned" --eta "$eta"
