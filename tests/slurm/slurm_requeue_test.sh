#!/usr/bin/env bash
# A sweep under a real one-node Slurm (tests/slurm/one_node_slurm.sh), submitted with the shipped
# slurm/sweep_cpu.sbatch and requeued mid-run with `scontrol requeue`; the requeued job must resume
# from the results directory and finish every job exactly once.
#   slurm_requeue_test.sh MHIM SOURCE_DIR mpi        one MPI job (srun --mpi=pmix, 3 ranks), requeued
#   slurm_requeue_test.sh MHIM SOURCE_DIR array      `mhim slurm submit --array 2`: 2 standalone workers;
#                                                    task 0 requeued
#   slurm_requeue_test.sh MHIM SOURCE_DIR timelimit  one MPI job gets USR1 as --signal=B:USR1@120 sends
#                                                    it near the time limit: it must requeue itself
# Exit 0 pass, 1 fail, 77 skipped (not root, slurm-wlm/munge missing, daemons will not start).
# MIL_KEEP_SLURM_TEST=1 keeps the scratch folder (logs, results) for a look afterwards.
set -uo pipefail
mhim=$1
src=$2
mode=$3
[[ -x $mhim ]] || { echo "FAIL: no mhim binary at '$mhim'"; exit 1; }
[[ $mode == mpi || $mode == array || $mode == timelimit ]] || { echo "FAIL: mode must be mpi, array or timelimit, not '$mode'"; exit 1; }

work=$(mktemp -d /tmp/mhim-slurm-test.XXXXXX)
chmod 755 "$work"
source "$src/tests/slurm/one_node_slurm.sh"
cleanup() {
  slurm_down
  if [[ ${MIL_KEEP_SLURM_TEST:-0} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

t0=$SECONDS
slurm_up "$work/slurm" || exit $?
echo "slurm up in $((SECONDS - t0)) s"

fail() {
  echo "FAIL: $*"
  for f in "$work"/job-*.out "$results"/slurm-*.out; do [[ -f $f ]] && { echo "---- $f"; cat "$f"; }; done
  echo "---- slurmctld.log (tail)"; tail -20 "$work/slurm/log/slurmctld.log"
  exit 1
}

# A quickstart-sized sweep on a tiny synthetic benchmark: 2 learning rates x 3 folds = 6 jobs of a few
# seconds each on 2 cores, long enough for a requeue to land while jobs run.
"$mhim" synth --out "$work/data" --bags 40 --dim 16 --min-instances 40 --max-instances 80 --seed 1 >/dev/null ||
  fail "mhim synth"
cat >"$work/sweep.yaml" <<EOF
name: slurm-requeue
datasets:
  - {name: synth, kind: bags, root: $work/data}
models:
  - {name: abmil}
train: {epochs: 12, lr: 5.0e-4}
split: {fold_count: 3, val_ratio: 0.25}
grid:
  train.lr: [2.0e-4, 5.0e-4]
seeds: [7]
EOF
expected=$("$mhim" sweep "$work/sweep.yaml" --dry-run | sed -n "s/^sweep '[^']*': \([0-9]*\) jobs.*/\1/p")
[[ $expected == 6 ]] || fail "the sweep should expand to 6 jobs, not '$expected'"

export MHIM=$mhim OMP_WAIT_POLICY=PASSIVE
results=$work/results
if [[ $mode != array ]]; then
  # 3 ranks on a 2-CPU node: --overcommit (rank 0 mostly sleeps).
  job=$(sbatch --parsable --ntasks=3 --overcommit --cpus-per-task=1 --time=15 --output="$work/job-%j.out" \
    "$src/slurm/sweep_cpu.sbatch" "$work/sweep.yaml" "$results") || fail "sbatch"
  requeue_id=$job
else
  # The generated script (its #SBATCH lines, the baked-in sweep and paths) under the real sbatch.
  submitted=$("$mhim" slurm submit "$work/sweep.yaml" --results "$results" --array 2 --cpus-per-task 1 --time 15) ||
    fail "mhim slurm submit: $submitted"
  job=$(sed -n 's/^submitted job \([0-9][0-9]*\)$/\1/p' <<<"$submitted")
  [[ -n $job ]] || fail "mhim slurm submit printed no job id: $submitted"
  grep -q "^batch script: $results/mhim-sweep.sbatch" <<<"$submitted" || fail "no batch script named: $submitted"
  requeue_id=${job}_0
fi
echo "submitted job $job ($mode)"

# Requeue once at least one result is written and before the last.
count_results() { find "$results/results" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l; }
for ((i = 0; i < 600; ++i)); do
  n=$(count_results)
  ((n >= 1)) && break
  sleep 0.2
done
((n >= 1 && n < expected)) || fail "wanted to interrupt mid-run, but $n of $expected results were written by then"
if [[ $mode == timelimit ]]; then
  scancel --batch --signal=USR1 "$job" || fail "scancel --batch --signal=USR1 $job"
  echo "sent USR1 to the batch script of $job with $n of $expected results written ($((SECONDS - t0)) s)"
else
  scontrol requeue "$requeue_id" || fail "scontrol requeue $requeue_id"
  echo "requeued $requeue_id with $n of $expected results written ($((SECONDS - t0)) s)"
fi

states=$(slurm_wait_done "$job" 400) || fail "the job did not finish: $states"
echo "$states"
while read -r id state code; do
  [[ $state == COMPLETED && $code == 0:0 ]] || fail "job $id ended $state with exit code $code"
done <<<"$states"

# Every job's result exactly once, all ok; the journal says each finished once and shows the stop.
python3 - "$results" "$expected" <<'EOF' || fail "results check"
import collections, glob, json, os, sys
results, expected = sys.argv[1], int(sys.argv[2])
files = sorted(glob.glob(os.path.join(results, "results", "*.json")))
manifest = {entry["id"] for entry in json.load(open(os.path.join(results, "jobs.json")))}
assert len(files) == expected, f"{len(files)} result files, expected {expected}"
ids = {os.path.basename(f)[:-5] for f in files}
assert ids == manifest, f"results {sorted(ids)} differ from the manifest {sorted(manifest)}"
for f in files:
    r = json.load(open(f))
    assert r["status"] == "ok", f"{f}: {r['status']}: {r.get('error')}"
journal = [json.loads(line) for line in open(os.path.join(results, "journal.jsonl"))]
ok = collections.Counter(j["job_id"] for j in journal if j["status"] == "ok")
assert set(ok) == manifest, f"journal ok lines cover {len(ok)} of {expected} jobs"
twice = {k: v for k, v in ok.items() if v != 1}
assert not twice, f"jobs finished more than once: {twice}"
interrupted = [j for j in journal if j["status"] == "interrupted"]
assert interrupted, "the journal shows no interrupted job: the requeue did not land mid-job"
print(f"{expected} results, each once; {len(interrupted)} interrupted and resumed")
EOF
[[ -s $results/leaderboard.md ]] || fail "no leaderboard"
grep -q "^$expected ok results; 0 missing" "$results/leaderboard.md" || fail "the leaderboard misses jobs: $(sed -n 3p "$results/leaderboard.md")"

out=$(cat "$work"/job-*.out "$results"/slurm-*.out 2>/dev/null)
grep -q "sweep exited with status 75" <<<"$out" || fail "the stopped sweep did not exit 75"
grep -q "run 2, on" <<<"$out" || fail "no second run after the requeue (SLURM_RESTART_COUNT)"
if [[ $mode == timelimit ]]; then
  grep -q "SIGUSR1 received: stopping the sweep" <<<"$out" || fail "the batch script did not see USR1"
  grep -q "work is left: requeueing job $job" <<<"$out" || fail "the script did not requeue itself after USR1"
else
  grep -q "SIGTERM received: stopping the sweep" <<<"$out" || fail "the batch script did not see the requeue's SIGTERM"
  grep -q "requeueing job" <<<"$out" && fail "the script requeued itself after a TERM (Slurm already does)"
fi
if [[ $mode == array ]]; then
  [[ $(grep -c "the sweep is finished" <<<"$out") -ge 2 ]] || fail "not every array task saw the sweep finished"
fi
for f in "$work"/job-*.out "$results"/slurm-*.out; do
  [[ -f $f ]] && { echo "---- $(basename "$f") (epoch lines left out)"; grep -v " epoch [0-9]" "$f"; }
done
echo "PASS ($mode) in $((SECONDS - t0)) s"
