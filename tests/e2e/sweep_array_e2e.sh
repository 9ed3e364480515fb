#!/usr/bin/env bash
# `mhim sweep --array` without Slurm or MPI: three standalone workers started together on one results
# directory finish an MHIM sweep (MHIM jobs wait for their teacher baselines) with every job run and
# written exactly once; then a rerun finds nothing to do.
#   sweep_array_e2e.sh MHIM
set -uo pipefail
mhim=$1
work=$(mktemp -d /tmp/mhim-array-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*"
  for f in "$work"/worker-*.log; do echo "---- $f"; grep -v " epoch [0-9]" "$f"; done
  exit 1
}

"$mhim" synth --out "$work/d" --bags 24 --dim 8 --min-instances 5 --max-instances 20 --seed 3 >/dev/null || fail "synth"
cat >"$work/sweep.json" <<EOF
{"name": "array-e2e",
 "datasets": [{"name": "d", "root": "$work/d"}],
 "models": [{"name": "mhim", "options": {"teacher_init": "baseline", "mask_ratio_h": 0.1, "merge": true, "merge_ratio": 0.8}}],
 "train": {"epochs": 3},
 "split": {"fold_count": 2, "val_ratio": 0.2},
 "grid": {"model.options.merge_k": [1, 2]},
 "seeds": [7]}
EOF
results=$work/results
# 2 merge_k x 2 folds MHIM jobs and their 2 teacher baselines (one per fold).
pids=()
for w in 1 2 3; do
  OMP_WAIT_POLICY=PASSIVE "$mhim" sweep "$work/sweep.json" --results "$results" --array --threads 1 \
    >"$work/worker-$w.out" 2>"$work/worker-$w.log" &
  pids+=($!)
done
for w in 1 2 3; do
  wait "${pids[$((w - 1))]}" || fail "worker $w exited with status $?"
  grep -q "^leaderboard: $results/leaderboard.md" "$work/worker-$w.out" || fail "worker $w printed no leaderboard"
done

python3 - "$results" <<'EOF' || fail "results check"
import collections, glob, json, os, sys
results = sys.argv[1]
files = sorted(glob.glob(os.path.join(results, "results", "*.json")))
assert len(files) == 6, f"{len(files)} results, expected 6"
by_id = {}
for f in files:
    r = json.load(open(f))
    assert r["status"] == "ok", f"{f}: {r.get('error')}"
    by_id[r["job_id"]] = r
mhim = [r for r in by_id.values() if r["spec"]["model"]["name"] == "mhim"]
assert len(mhim) == 4, f"{len(mhim)} MHIM results, expected 4"
for r in mhim:
    teacher = r["inputs"]["teacher_checkpoint"]["path"]
    baseline = by_id[os.path.basename(os.path.dirname(teacher))]
    assert baseline["spec"]["model"]["name"] == "mhim_pure", teacher
    # The baseline's result was written before its MHIM job was claimed (ISO timestamps sort).
    assert baseline["runtime"]["finished_at"] <= r["runtime"]["started_at"], (baseline["runtime"], r["runtime"])
journal = [json.loads(line) for line in open(os.path.join(results, "journal.jsonl"))]
ok = collections.Counter(j["job_id"] for j in journal if j["status"] == "ok")
assert set(ok) == set(by_id) and set(ok.values()) == {1}, f"journal ok lines per job: {dict(ok)}"
locks = [f for f in os.listdir(os.path.join(results, "locks")) if f.endswith(".lock")]
assert not locks, f"locks left behind: {locks}"
print("6 results, each once; MHIM jobs after their baselines")
EOF
ran=$(cat "$work"/worker-*.log | grep -c " claimed")
[[ $ran == 6 ]] || fail "workers claimed $ran jobs, expected 6"

"$mhim" sweep "$work/sweep.json" --results "$results" --array --threads 1 >"$work/rerun.out" 2>"$work/worker-rerun.log" ||
  fail "the rerun exited with status $?"
grep -q "ran 0 ok, 0 failed; the sweep is finished" "$work/worker-rerun.log" || fail "the rerun ran jobs again"
echo "PASS"
