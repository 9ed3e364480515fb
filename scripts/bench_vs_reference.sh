#!/usr/bin/env bash
# Epoch times of `mhim bench train` beside the PyTorch reference loop (scripts/reference_bench.py, run with
# Debian's python3-torch) on the same bags, one engine after the other on this machine, and their ratio
# (reference seconds / ours: 2.00x means we take half the reference's time). Arguments:
#   --models LIST (default abmil,transmil,mhim_pure,mhim)  --precision LIST (default fp32,bf16)
#   --epochs E (default 3; the first epoch is not timed)
#   --bags N --min-instances N --max-instances N (default 60, 500, 3000: the #6 bench shape)
# Needs build/app/mhim (scripts/build.sh; MIL_MHIM names another binary) and python3-torch (apt-get install python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."

models=abmil,transmil,mhim_pure,mhim
precision=fp32,bf16
epochs=3
shape=()
while (($#)); do
  case "$1" in
    --models) models=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --bags | --min-instances | --max-instances) shape+=("$1" "$2"); shift 2 ;;
    *) echo "bench_vs_reference.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
mhim=${MIL_MHIM:-${MIL_BUILD_DIR:-build}/app/mhim}
[[ -x "$mhim" ]] || { echo "bench_vs_reference.sh: $mhim is missing; run scripts/build.sh" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null ||
  { echo "bench_vs_reference.sh: /usr/bin/python3 cannot import torch; apt-get install python3-torch" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 scripts/reference_bench.py --models "$models" --precision "$precision" --epochs "$epochs" \
  "${shape[@]}" | tee "$work/reference.txt"
"$mhim" bench train --models "$models" --precision "$precision" --epochs "$epochs" "${shape[@]}" |
  tee "$work/ours.txt"

echo
printf '%-10s %-5s %12s %12s %10s\n' model prec "reference s" "mhim s" "ref/mhim"
# reference lines: "<model> <prec> <seconds> s/epoch"; ours: "<model> <prec> <seconds> ..." after the header.
awk 'NR == FNR { if ($4 == "s/epoch") ref[$1 " " $2] = $3; next }
     ($1 " " $2) in ref && $3 ~ /^[0-9.]+$/ {
       printf "%-10s %-5s %12.3f %12.3f %9.2fx\n", $1, $2, ref[$1 " " $2], $3, ref[$1 " " $2] / $3 }' \
  "$work/reference.txt" "$work/ours.txt"
