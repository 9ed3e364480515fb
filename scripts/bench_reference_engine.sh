#!/usr/bin/env bash
# Seconds per epoch (train + validation) of the unchanged reference's own training script
# (DearCaat/MHIM-MIL main.py, with its engine, data loader, timm scheduler and masking code) beside
# `mhim train`, on the same files, the same threads and the same settings, run alternately; writes a
# markdown table with each side's median, their ratio, each process's peak memory and CPU seconds.
# OUT/runs.jsonl keeps every run and a rerun into the same OUT adds to it (and to the table);
# OUT/logs/ holds each process's output and /usr/bin/time report, OUT/notes.txt the uptime.
#
#   scripts/bench_reference_engine.sh [--out DIR] [--data DIR] [--models LIST] [--precision LIST]
#       [--epochs E] [--repeats R] [--threads T] [--nice N] [--ref DIR] [--deps DIR]
#
#   --out DIR        runs, logs and table.md (default /tmp/bench_reference_engine)
#   --data DIR       the data set, built there once when DIR/labels.csv is missing (default OUT/data):
#                    `mhim synth` 60 slides, D = 1024, 500-3,000 instances, and DIR/splits/fold_0.csv
#                    (ID,Split,Label: 36 train / 12 val / 12 test, stratified), which both the
#                    reference (--csv_path DIR/splits) and `mhim train` (split.dir) read; fold_1.csv
#                    only exists because `mhim train` wants two folds
#   --models LIST    abmil,transmil,mhim_attn,mhim_selfattn (the default: ABMIL, TransMIL, MHIM v2 on
#                    the attn and selfattn aggregators, the reference README's MHIM command)
#   --precision LIST fp32,bf16 (default fp32)
#   --epochs E       epochs per process (default 4); the first is warm-up, so E - 1 are timed
#   --repeats R      processes per side per configuration (default 1), alternating which side starts
#   --threads T      intra-op threads of both sides (default 2)
#   --nice N         niceness of the timed processes (default -10, so that builds at nice 0-10 on a
#                    shared machine take little of their CPU; needs root)
#   --ref DIR        the reference checkout (default /tmp/ref/MHIM-MIL)
#   --deps DIR       folder holding the reference's pure-Python dependencies as checked out from their
#                    repositories: einops/, timm/, torchmetrics/, lightning-utilities/ (default /tmp/ref)
#
# The reference runs with Debian's python3-torch (LibTorch 1.13, the same library `mhim` links) and
# the start-up shim scripts/reference_engine/shim/sitecustomize.py (stubs for absent modules it never
# uses here, the torch 1.13 GradScaler bridge, the `--model mhim` crash bridge, and for bf16 CPU
# autocast behind the reference's own --amp switch; its docstring lists each). The reference's code
# is never edited or copied. Its options, from its README and config/feat_cls.yaml (gelu, dropout
# 0.25, Adam lr 2e-4, weight decay 1e-5, cosine schedule), plus:
#   --cv_fold=1 --csv_path DIR/splits   the fold_0.csv split, as `mhim train --protocol file` reads it
#   --val_ratio=0.2   only so that it validates on the val rows: with 0 it validates on the test rows
#   --num_workers=0   the data loader reads each bag in the training process, as `mhim` does; the
#                     config's 6 worker processes would compete for the 2 cores
#   --no_prefetch     its PrefetchLoader crashes without CUDA (NameError: `suppress` is not imported
#                     in datasets/data_utils.py); without it batches come straight from the DataLoader
#   MHIM: --teacher_init unset, so it prints "Init Error" and keeps the random teacher, as our
#         teacher_init "random" does (timing only).
# Both sides: OMP_NUM_THREADS = MKL_NUM_THREADS = T, OMP_WAIT_POLICY=PASSIVE (unless set), and the
# checkpoints each writes every epoch. Epoch ends are stamped from outside by
# scripts/reference_engine/epoch_clock.py; scripts/reference_engine/speed_table.py makes the table.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

out=/tmp/bench_reference_engine
data=
models=abmil,transmil,mhim_attn,mhim_selfattn
precisions=fp32
epochs=4
repeats=1
threads=2
niceness=-10
ref=/tmp/ref/MHIM-MIL
deps=/tmp/ref
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --precision) precisions=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --nice) niceness=$2; shift 2 ;;
    --ref) ref=$2; shift 2 ;;
    --deps) deps=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_reference_engine.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
data=${data:-$out/data}
((epochs >= 2)) || { echo "bench_reference_engine.sh: --epochs must be >= 2 (the first is warm-up)" >&2; exit 2; }

fail() { echo "bench_reference_engine.sh: $*" >&2; exit 1; }
mhim=${MIL_MHIM:-$repo/${MIL_BUILD_DIR:-build}/app/mhim}
[[ -x $mhim ]] || fail "$mhim is missing; run scripts/build.sh mhim"
[[ -f $ref/main.py && -f $ref/config/feat_cls.yaml ]] || fail "$ref is not a DearCaat/MHIM-MIL checkout"
[[ -x /usr/bin/time ]] || fail "/usr/bin/time is missing (apt-get install time)"
pythonpath=$repo/scripts/reference_engine/shim
for dep in einops timm torchmetrics/src lightning-utilities/src; do
  [[ -d $deps/$dep ]] || fail "$deps/$dep is missing (the reference's dependency, from its repository)"
  pythonpath+=:$deps/$dep
done
/usr/bin/python3 -c 'import torch, pandas, sklearn, h5py, yaml' 2>/dev/null ||
  fail "/usr/bin/python3 lacks a module the reference needs: apt-get install python3-torch python3-pandas python3-sklearn python3-h5py python3-yaml"

mkdir -p "$out"
if [[ ! -f $data/labels.csv ]]; then
  echo "building the data set in $data" >&2
  "$mhim" synth --out "$data" --bags 60 --dim 1024 --min-instances 500 --max-instances 3000 --seed 7
fi
mkdir -p "$data/splits"
# Per class in labels.csv order: fold 0 = 18 train, 6 val, 6 test; fold 1 = 6 test, 6 val, 18 train.
for fold in 0 1; do
  awk -F, -v fold=$fold 'NR == 1 { print "ID,Split,Label"; next }
    { k = ++n[$2]; if (fold == 1) k = 31 - k
      print $1 "," (k <= 18 ? "train" : k <= 24 ? "val" : "test") "," $2 }' \
    "$data/labels.csv" > "$data/splits/fold_$fold.csv"
done
[[ $(grep -c ',train,' "$data/splits/fold_0.csv") == 36 ]] || fail "$data/labels.csv is not 30 + 30 slides"

record=$out/runs.jsonl
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# The reference's options for one model (see the header).
reference_model_args() {
  case "$1" in
    abmil) echo --model=abmil ;;
    transmil) echo --model=transmil ;;
    mhim_attn | mhim_selfattn)
      echo --model=mhim --baseline="${1#mhim_}" --attn2score --merge_enable --merge_mm=0.9999 \
        --aux_alpha=0.5 --mask_ratio_h=0.03 --merge_ratio=0.8 --merge_k=5 ;;
    *) fail "unknown model '$1' (abmil, transmil, mhim_attn, mhim_selfattn)" ;;
  esac
}
# Ours: the same model and options as a JobSpec.
our_model_json() {
  case "$1" in
    abmil | transmil) echo "{\"name\": \"$1\", \"options\": {\"dropout\": 0.25, \"activation\": \"gelu\"}}" ;;
    mhim_attn | mhim_selfattn)
      echo "{\"name\": \"mhim\", \"options\": {\"baseline\": \"${1#mhim_}\", \"teacher_init\": \"random\"," \
        "\"attn2score\": true, \"merge\": true, \"merge_mm\": 0.9999, \"aux_alpha\": 0.5," \
        "\"mask_ratio_h\": 0.03, \"merge_ratio\": 0.8, \"merge_k\": 5, \"dropout\": 0.25," \
        "\"activation\": \"gelu\"}}" ;;
  esac
}

run_reference() {  # model precision repeat
  local title=$1-$2-$3 amp=()
  [[ $2 == bf16 ]] && amp=(--amp)
  rm -rf "$out/ref-out" && mkdir -p "$out/ref-out"
  # The shim's variables reach only the reference's process, not the clock's interpreter.
  (cd "$ref" && /usr/bin/python3 "$repo/scripts/reference_engine/epoch_clock.py" --record "$record" \
    --log "$out/logs/reference-$title.log" --nice "$niceness" --stdout-pattern 'Epoch \[[0-9]+/[0-9]+\]' \
    --label side=reference --label model="$1" --label precision="$2" --label repeat="$3" -- \
    env MHIM_BENCH_SHIM=1 PYTHONPATH="$pythonpath" PYTHONUNBUFFERED=1 \
    MHIM_BENCH_REF_AUTOCAST=$([[ $2 == bf16 ]] && echo cpu-bf16 || echo off) \
    /usr/bin/python3 main.py --project=bench --datasets=call --dataset_root="$data" \
    --csv_path="$data/splits" --output_path="$out/ref-out" -c="$ref/config/feat_cls.yaml" \
    --title="$title" --cv_fold=1 --val_ratio=0.2 --num_workers=0 --no_prefetch \
    --num_epoch="$epochs" $(reference_model_args "$1") "${amp[@]}")
}

run_ours() {  # model precision repeat
  local title=$1-$2-$3 job=$out/ours-job.json
  rm -rf "$out/ours-work" && mkdir -p "$out/ours-work"
  cat > "$job" <<EOF
{"dataset": {"name": "bench", "root": "$data", "kind": "bags", "class_count": 2},
 "model": $(our_model_json "$1"),
 "split": {"protocol": "file", "dir": "splits", "fold_count": 2, "fold_index": 0},
 "train": {"epochs": $epochs, "precision": "$2"},
 "seed": 2021}
EOF
  /usr/bin/python3 "$repo/scripts/reference_engine/epoch_clock.py" --record "$record" \
    --log "$out/logs/ours-$title.log" --nice "$niceness" --watch-file "$out/ours-work/epochs.jsonl" \
    --label side=ours --label model="$1" --label precision="$2" --label repeat="$3" -- \
    "$mhim" train --job "$job" --threads "$threads" --work-dir "$out/ours-work" --out "$out/ours-result.json"
}

mkdir -p "$out/logs"
echo "$(date -u '+%Y-%m-%d %H:%M UTC') start, uptime: $(uptime)" >> "$out/notes.txt"
IFS=, read -ra model_list <<< "$models"
IFS=, read -ra precision_list <<< "$precisions"
for model in "${model_list[@]}"; do reference_model_args "$model" > /dev/null; done
pair=0  # which side starts alternates from pair to pair; a failed run is recorded and the rest go on
for precision in "${precision_list[@]}"; do
  for model in "${model_list[@]}"; do
    for ((r = 0; r < repeats; ++r, ++pair)); do
      if ((pair % 2 == 0)); then
        run_reference "$model" "$precision" "$r" || true
        run_ours "$model" "$precision" "$r" || true
      else
        run_ours "$model" "$precision" "$r" || true
        run_reference "$model" "$precision" "$r" || true
      fi
    done
  done
done
echo "$(date -u '+%Y-%m-%d %H:%M UTC') end, uptime: $(uptime)" >> "$out/notes.txt"
rm -rf "$out/ref-out" "$out/ours-work"

/usr/bin/python3 scripts/reference_engine/speed_table.py "$record" --threads "$threads" \
  --nice "$niceness" > "$out/table.md"
cat "$out/table.md"
