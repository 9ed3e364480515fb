#!/usr/bin/env bash
# Cost order (longest predicted job first, baselines ahead of their jobs) against file order on a
# heterogeneous stand-in sweep (sweeps/cost_order_bench.yaml: ABMIL, MHIM(attn) and TransMIL on two
# stand-ins of different sizes), at 3 and 5 MPI ranks. Runs alternate between the orders (cost, file,
# file, cost, ...) so that a change in the machine's load hits both alike; each run starts from an
# empty results folder, so the cost order is what a first sweep gets (the table, then calibrated as
# its jobs finish). It also checks `mhim plan`: before each cost-order run after the first at a rank
# count, it plans the sweep with the earlier run's results folder as calibration (what a second sweep
# on the same machine knows) and prints the predicted makespan beside the measured wall time.
#
#   scripts/cost_order_bench.sh [REPETITIONS]      (default 3; prints a table of medians at the end)
# Env: MIL_MHIM (default build/app/mhim), MIL_BENCH_DIR (default /tmp/mhim-cost-order-bench),
# MIL_BENCH_RANKS (default "3 5": the MPI rank counts to compare at).
# Everything runs under nice -n 10 (a shared machine); the load average is logged around each run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi_env.sh
reps=${1:-3}
rank_counts=${MIL_BENCH_RANKS:-3 5}
mhim=$(realpath "${MIL_MHIM:-build/app/mhim}")
work=${MIL_BENCH_DIR:-/tmp/mhim-cost-order-bench}
sweep=sweeps/cost_order_bench.yaml
mkdir -p "$work"
[[ -d $work/data/camelyon-r50 ]] || "$mhim" synth --benchmark camelyon-r50 --out "$work/data/camelyon-r50" --scale 0.02 >/dev/null
[[ -d $work/data/tcga-nsclc-r50 ]] || "$mhim" synth --benchmark tcga-nsclc-r50 --out "$work/data/tcga-nsclc-r50" --scale 0.03 >/dev/null
sets=(--set "datasets.camelyon-r50.root=$work/data/camelyon-r50" --set "datasets.tcga-nsclc-r50.root=$work/data/tcga-nsclc-r50")
log=$work/runs.tsv
echo -e "rep\tranks\torder\twall_s\tplanned_s\tload1_before\tload1_after" > "$log"

run() {  # rep ranks order
  local rep=$1 ranks=$2 order=$3 dir=$work/results-$2-$3-$1 planned=-
  rm -rf "$dir"
  local previous=$work/results-$ranks-cost-$((rep - 1))
  if [[ $order == cost && -d $previous ]]; then
    # The plan for this run, calibrated by the previous cost-order run at the same rank count; its
    # jobs' seconds already include sharing the cores, so the plan does not model sharing (--cpus 0).
    nice -n 10 "$mhim" plan "$sweep" "${sets[@]}" --ranks "$ranks" --cpus 0 --threads 1 --calibrate-from "$previous" \
      --json "$work/plan-$ranks-$rep.json" >"$work/plan-$ranks-$rep.txt"
    planned=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['makespan_s'], 1))" \
      "$work/plan-$ranks-$rep.json")
  fi
  local load_before load_after start end
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  start=$(date +%s.%N)
  nice -n 10 mpirun -n "$ranks" "${MIL_MPIRUN_FLAGS[@]}" "$mhim" sweep "$sweep" "${sets[@]}" --results "$dir" \
    --order "$order" --threads 1 --progress plain --status-port off >"$dir.log" 2>&1 || {
    echo "run $rep, $ranks ranks, $order order failed: see $dir.log" >&2; exit 1; }
  end=$(date +%s.%N)
  load_after=$(cut -d' ' -f1 /proc/loadavg)
  local wall
  wall=$(python3 -c "print(round($end - $start, 1))")
  echo -e "$rep\t$ranks\t$order\t$wall\t$planned\t$load_before\t$load_after" | tee -a "$log"
}

for ((rep = 1; rep <= reps; ++rep)); do
  for ranks in $rank_counts; do
    if ((rep % 2)); then run "$rep" "$ranks" cost; run "$rep" "$ranks" file
    else run "$rep" "$ranks" file; run "$rep" "$ranks" cost; fi
  done
done

python3 - "$log" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("\nranks  order  runs  median wall s  (each run)           median planned s  plan/measured")
for ranks in sorted({r["ranks"] for r in rows}, key=int):
    med = {}
    for order in ("cost", "file"):
        walls = [float(r["wall_s"]) for r in rows if r["ranks"] == ranks and r["order"] == order]
        med[order] = statistics.median(walls)
        planned = [(float(r["planned_s"]), float(r["wall_s"])) for r in rows
                   if r["ranks"] == ranks and r["order"] == order and r["planned_s"] != "-"]
        plan = (f"{statistics.median(p for p, _ in planned):16.1f}  " +
                " ".join(f"{p / w:.2f}" for p, w in planned)) if planned else ""
        print(f"{ranks:>5}  {order:5}  {len(walls):4}  {med[order]:13.1f}  {' '.join(f'{w:.0f}' for w in walls):20} {plan}")
    print(f"{ranks:>5}  file/cost median ratio: {med['file'] / med['cost']:.2f}")
loads = [float(r[k]) for r in rows for k in ("load1_before", "load1_after")]
# Worker-seconds idle at the tail: per run, the sum over worker ranks of the time between that rank's
# last job ending and the sweep's last job ending (from each result's runtime.started_at, seconds and
# rank). On a machine with a core per worker this is wall time lost; on an oversubscribed one other
# processes take the idle rank's core, so the wall time hides it.
import collections, datetime, glob, json, os
def stamp(text): return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timestamp()
idle = collections.defaultdict(list)
for r in rows:
    d = os.path.join(os.path.dirname(sys.argv[1]), f"results-{r['ranks']}-{r['order']}-{r['rep']}")
    ends, last = [], collections.defaultdict(float)
    for f in glob.glob(d + "/results/*.json"):
        rt = json.load(open(f))["runtime"]
        end = stamp(rt["started_at"]) + rt["seconds"]
        ends.append(end)
        last[rt.get("rank")] = max(last[rt.get("rank")], end)
    if ends: idle[(r["ranks"], r["order"])].append(sum(max(ends) - v for v in last.values()))
print("\nranks  order  worker-seconds idle at the tail: median (each run)")
for (ranks, order), values in sorted(idle.items()):
    print(f"{ranks:>5}  {order:5}  {statistics.median(values):6.0f}  ({' '.join(f'{v:.0f}' for v in values)})")
print(f"1-min load average around the runs: median {statistics.median(loads):.1f}, "
      f"range {min(loads):.1f}-{max(loads):.1f} (on {__import__('os').cpu_count()} cores)")
PY
