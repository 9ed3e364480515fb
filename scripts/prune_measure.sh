#!/usr/bin/env bash
# Measures successive halving (docs/pruning.md): CPU-seconds to a complete leaderboard with and
# without pruning, and for each (dataset, aggregator) whether the grid point chosen on validation is
# the same and how its test metric differs, against the full run's fold-to-fold standard deviation.
#
# ONE full sweep (every job) runs in array mode; `mhim bench prune` replays halving on its results.
# Jobs are deterministic (their id hashes everything a result depends on), so a pruning sweep runs
# exactly the replayed jobs with the same results: the replay prices pruning without running twice.
# REAL_PRUNED_RUN=1 also runs the pruning sweep for real and has bench prune check it against the
# replay (the same jobs, the same pruned set, identical metrics).
#
# The sweep: MHIM-v2's 18-point grid (sweeps/mhim_v2_grid.yaml: mask_ratio_h x merge_ratio x
# merge_k, teacher_init baseline, so 5 never-pruned baselines per pair) on the aggregators in
# AGGREGATORS, 5 folds, over small synthetic stand-ins sized for a loaded 2-core machine (the
# `mhim synth --all` stand-ins cost ~10x more per job at their smallest useful scale):
#   cls-a   binary, 80 bags of 8-32 instances, D=16, witness signal 1.5 (hard)
#   cls-b   binary, the same sizes, signal 2.5 plus easy witnesses (MHIM's setting)
#   surv-c  survival (C-index), 80 cases, the same sizes
#
#   scripts/prune_measure.sh                          # cls-a cls-b x attn dsmil: 4 pairs, 380 jobs
#   DATASETS="cls-a cls-b surv-c" scripts/prune_measure.sh   # reruns skip finished jobs
#
# Environment: MHIM (binary, default build/app/mhim), OUT (default results/prune-measure), EPOCHS (4),
# LR (1e-3), EMBED (64: model.options.embed_dim), ETA (3), PROCESSES (2: array processes, niced),
# DATASETS (of the three above), AGGREGATORS (attn, selfattn, dsmil), REAL_PRUNED_RUN (0),
# TIME_LIMIT (seconds; the array processes are stopped with SIGTERM after it, and bench prune leaves
# out the (dataset, aggregator) pairs the full run has not finished: jobs run pair by pair).
set -euo pipefail
cd "$(dirname "$0")/.."

mhim=${MHIM:-build/app/mhim}
out=${OUT:-results/prune-measure}
epochs=${EPOCHS:-4}
lr=${LR:-1e-3}
embed=${EMBED:-64}
eta=${ETA:-3}
processes=${PROCESSES:-2}
datasets=${DATASETS:-cls-a cls-b}
aggregators=${AGGREGATORS:-attn dsmil}
real_pruned_run=${REAL_PRUNED_RUN:-0}
time_limit=${TIME_LIMIT:-0}
grid=sweeps/mhim_v2_grid.yaml

# name -> `mhim synth` options and the sweep's dataset entry.
synth_options() {
  local sizes="--bags 80 --dim 16 --min-instances 8 --max-instances 32"
  case $1 in
    cls-a) echo "$sizes --seed 11 --signal 1.5" ;;
    cls-b) echo "$sizes --seed 12 --signal 2.5 --easy-witnesses 2" ;;
    surv-c) echo "$sizes --seed 13 --task survival" ;;
    *) echo "unknown stand-in '$1' (cls-a, cls-b, surv-c)" >&2 && exit 2 ;;
  esac
}
dataset_entry() {
  case $1 in
    surv-c) echo "  - {name: $1, kind: survival, root: $2, labels: survival.csv, class_count: 4}" ;;
    *) echo "  - {name: $1, kind: bags, root: $2, class_count: 2}" ;;
  esac
}

mkdir -p "$out/data"
for d in $datasets; do
  # shellcheck disable=SC2046
  [[ -d "$out/data/$d" ]] || nice -n 10 "$mhim" synth --out "$out/data/$d" $(synth_options "$d") >/dev/null
done

# The sweep: the stand-ins, the v2 grid's model lines for the chosen aggregators (one per line there).
{
  echo "name: prune_measure"
  echo "datasets:"
  for d in $datasets; do dataset_entry "$d" "$(realpath "$out/data/$d")"; done
  echo "models:"
  for a in $aggregators; do grep -E "method: mhim-$a," "$grid"; done
  echo "train: {epochs: $epochs, lr: $lr, weight_decay: 1.0e-5}"
  echo "split: {protocol: kfold, fold_count: 5, split_seed: 2021, val_ratio: 0.2}"
  echo "seeds: [2021]"
} >"$out/sweep.yaml"
overrides=()
m=0
for a in $aggregators; do
  overrides+=(--set "models.$m.options.embed_dim=$embed")
  m=$((m + 1))
done

# Runs the sweep into $1 with P niced array processes; prints their summed user + system CPU-seconds.
run_sweep() {
  local dir=$1
  shift
  local pids=()
  for ((p = 1; p <= processes; ++p)); do
    /usr/bin/time -f "%U %S" -o "$dir.time.$p" timeout --signal=TERM "$time_limit" nice -n 10 \
      "$mhim" sweep "$out/sweep.yaml" --array --results "$dir" --threads 1 "${overrides[@]}" "$@" \
      >"$dir.log.$p" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  ((time_limit > 0)) && failed=0 # stopped at the limit: what finished is measured
  awk '{cpu += $1 + $2} END {printf "%.1f", cpu}' "$dir".time.*
  return $failed
}

uptime
"$mhim" sweep "$out/sweep.yaml" --dry-run "${overrides[@]}" | head -1
full_cpu=$(run_sweep "$out/full")
echo "full sweep: $full_cpu process CPU-seconds (user + system of the $processes array processes, this run only)"
uptime
if [[ $real_pruned_run == 1 ]]; then
  pruned_cpu=$(run_sweep "$out/pruned" --set "prune={\"method\": \"halving\", \"eta\": $eta}")
  echo "pruning sweep: $pruned_cpu process CPU-seconds"
  "$mhim" bench prune --full "$out/full" --pruned "$out/pruned" --eta "$eta"
else
  "$mhim" bench prune --full "$out/full" --eta "$eta"
fi
