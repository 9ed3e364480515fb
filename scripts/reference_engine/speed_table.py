#!/usr/bin/env python3
"""Markdown table of scripts/bench_reference_engine.sh's runs (the JSON lines of epoch_clock.py).

Per model and precision and per side: the seconds of every epoch but each process's first (the time
between consecutive epoch ends; the first epoch has no preceding end and is the warm-up), pooled over
the side's processes, and their median; the ratio reference / ours of the medians (2.00x: ours takes
half the reference's time); the largest peak resident set of the side's processes; the first epoch
end after the start (start-up, data loading and the warm-up epoch); the median CPU seconds (user +
system) of a whole process, less sensitive to the load than wall time; the 1-minute load average
read before and after each process.

  speed_table.py RUNS.jsonl [--threads T] [--nice N]
"""
import argparse
import json
import statistics
import sys

NAMES = {"abmil": "ABMIL", "transmil": "TransMIL", "mhim_attn": "MHIM(ABMIL) v2",
         "mhim_selfattn": "MHIM(TransMIL) v2"}
SIDES = ("reference", "ours")


def epoch_seconds(run):
    ends = run["epoch_ends"]
    return [b - a for a, b in zip(ends, ends[1:])]


def summarise(runs):
    """{(model, precision): {side: summary}} in the order the configurations were run."""
    table = {}
    for run in runs:
        side = table.setdefault((run["model"], run["precision"]), {}).setdefault(
            run["side"], {"epochs": [], "rss": [], "first": [], "cpu": [], "load": [], "failed": 0})
        if run["exit_status"] != 0:
            side["failed"] += 1
            continue
        side["epochs"] += epoch_seconds(run)
        side["rss"].append(run["peak_rss_kib"] / 1024 ** 2)
        side["first"].append(run["epoch_ends"][0] if run["epoch_ends"] else float("nan"))
        if "cpu_seconds" in run:
            side["cpu"].append(run["cpu_seconds"])
        side["load"] += [run["load_before"][0], run["load_after"][0]]
    return table


def cell(side):
    if not side or not side["epochs"]:
        return "-", None
    median = statistics.median(side["epochs"])
    text = "%.2f (%d: %.2f-%.2f)" % (median, len(side["epochs"]), min(side["epochs"]),
                                      max(side["epochs"]))
    return text, median


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nice", type=int, default=-10)
    args = parser.parse_args()
    with open(args.runs) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    print("| model | precision | reference s/epoch (epochs: range) | ours s/epoch (epochs: range) "
          "| reference / ours | peak RSS reference / ours | start-up + epoch 1, reference / ours "
          "| CPU s per process, reference / ours | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    loads = []
    for (model, precision), sides in summarise(runs).items():
        ref, ours = sides.get("reference"), sides.get("ours")
        ref_text, ref_median = cell(ref)
        our_text, our_median = cell(ours)
        ratio = "%.2fx" % (ref_median / our_median) if ref_median and our_median else "-"
        rss = " / ".join("%.2f GiB" % max(s["rss"]) if s and s["rss"] else "-" for s in (ref, ours))
        first = " / ".join("%.1f s" % statistics.median(s["first"]) if s and s["first"] else "-"
                           for s in (ref, ours))
        cpu = " / ".join("%.0f" % statistics.median(s["cpu"]) if s and s["cpu"] else "-"
                         for s in (ref, ours))
        load = [x for s in (ref, ours) if s for x in s["load"]]
        loads += load
        failed = sum(s["failed"] for s in (ref, ours) if s)
        note = " (%d failed runs)" % failed if failed else ""
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s%s |"
              % (NAMES.get(model, model), precision, ref_text, our_text, ratio, rss, first, cpu,
                 "%.1f-%.1f" % (min(load), max(load)) if load else "-", note))
    print()
    print("%d processes, %d intra-op threads each, nice %d; 1-minute load average %s across them."
          % (len(runs), args.threads, args.nice,
             "%.1f-%.1f" % (min(loads), max(loads)) if loads else "unknown"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
