#!/usr/bin/env bash
# A dataset folder that describes itself just works: a CAMELYON16 stand-in keeps its labels in
# label_c16.csv, and its dataset.json says so. check-data, pack, train, predict and heatmap take the
# folder with no label flag, also after it has moved; a wrong flag still overrides it (and fails).
#   dataset_folder_e2e.sh MHIM
set -uo pipefail
mhim=$1
work=$(mktemp -d /tmp/mhim-dataset-folder-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
export OMP_WAIT_POLICY=PASSIVE

"$mhim" synth --benchmark camelyon-r50 --out "$work/written" --scale 0.02 --dim 8 --format h5 \
  >/dev/null || fail "synth"
mv "$work/written" "$work/c16"  # the description must not depend on where it was written
d=$work/c16
[[ -f $d/label_c16.csv && ! -f $d/labels.csv ]] || fail "the stand-in should keep its labels in label_c16.csv only"

"$mhim" check-data --root "$d" >"$work/check.log" 2>&1 || { cat "$work/check.log"; fail "check-data --root"; }
"$mhim" pack --root "$d" --out "$work/c16.milpack" >"$work/pack.log" 2>&1 || { cat "$work/pack.log"; fail "pack --root"; }
"$mhim" train --dataset "$d" --epochs 1 --folds 2 --threads 1 --work-dir "$work/run" --out "$work/result.json" \
  >"$work/train.log" 2>&1 || { cat "$work/train.log"; fail "train --dataset"; }
grep -q '"labels": *"label_c16.csv"' "$work/result.json" || fail "the result should record label_c16.csv as the label file"
"$mhim" predict --model abmil --weights "$work/run/model_best.pt" --input "$d" --out "$work/pred.json" \
  >"$work/predict.log" 2>&1 || { cat "$work/predict.log"; fail "predict --input"; }
grep -q '"label": *1' "$work/pred.json" || fail "predict should give the tumour slides their label from label_c16.csv"
"$mhim" heatmap --model abmil --weights "$work/run/model_best.pt" --input "$d" --out "$work/hm" \
  >"$work/heatmap.log" 2>&1 || { cat "$work/heatmap.log"; fail "heatmap --input"; }
[[ -f $work/hm/index.html && -f $work/hm/tumor_001.png ]] || fail "heatmap should draw every slide"

# Flags still override the description: a label file that does not exist fails, naming it.
if "$mhim" check-data --root "$d" --labels nope.csv >"$work/bad.log" 2>&1; then fail "--labels nope.csv should fail"; fi
grep -q "nope.csv" "$work/bad.log" || { cat "$work/bad.log"; fail "the error should name nope.csv"; }
echo "ok"
