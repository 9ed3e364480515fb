#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is missing, builds mhim, writes two
# synthetic benchmarks, runs a real MPI sweep over them (rank 0 orchestrates, ranks 1-2 train) and
# prints the path of the leaderboard. Rerunning skips jobs already done; --fresh starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

fresh=0
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown argument '$arg' (only --fresh)" >&2; exit 2 ;;
  esac
done

scripts/deps.sh                      # what building and running needs; not the tests' packages
MIL_BUILD_TESTS=OFF scripts/build.sh mhim
mhim="$root/build/app/mhim"

data="$root/build/quickstart/data"
results="$root/results/quickstart"
((fresh)) && rm -rf "$results"

# Two stand-ins for WSI benchmarks: an easier one and one with rarer, weaker witness instances.
"$mhim" synth --out "$data/synth-easy" --bags 120 --dim 64 --signal 3.0 --seed 1
"$mhim" synth --out "$data/synth-hard" --bags 160 --dim 64 --signal 2.0 --witness-min 0.03 --witness-max 0.10 --seed 2

source scripts/mpi_env.sh
ranks=${MIL_QUICKSTART_RANKS:-3}
status=0
mpirun -n "$ranks" "${MIL_MPIRUN_FLAGS[@]}" "$mhim" sweep sweeps/quickstart.yaml --results "$results" \
  --set "datasets.synth-easy.root=$data/synth-easy" --set "datasets.synth-hard.root=$data/synth-hard" \
  >/dev/null || status=$?  # its stdout is the leaderboard path, printed below with the table

echo
if [[ -f "$results/leaderboard.md" ]]; then
  cat "$results/leaderboard.md"
  echo
  echo "leaderboard: $results/leaderboard.md"
fi
exit "$status"
