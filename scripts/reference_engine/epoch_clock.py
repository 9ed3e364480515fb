#!/usr/bin/env python3
"""Runs one training process and records when each of its epochs ends, its peak memory and the load.

Used by scripts/bench_reference_engine.sh for both sides, so that both are timed the same way from
outside: an epoch ends when the process reports it, after the epoch's validation.

  reference (DearCaat/MHIM-MIL main.py): it prints "Epoch [k/N] train loss ..." on stdout after
      validating the student (and MHIM's teacher); --stdout-pattern matches that line, stamped on
      arrival (the process runs with PYTHONUNBUFFERED=1, so the line arrives when it is printed).
  ours (mhim train): it appends one line per epoch to WORK_DIR/epochs.jsonl after validating;
      --watch-file polls that file every --poll seconds (0.05 by default: +-50 ms per stamp, well
      under the epochs timed here) and stamps each new line.

The process runs under `nice -n NICE /usr/bin/time -v`; peak memory is time's "Maximum resident set
size", the largest resident set of the process (and of any child it waited for, as wait4 reports
it); its CPU seconds are time's user + system time of the whole process (start-up and the final
test included). /proc/loadavg is read just before the start and just after the end. One JSON object is
appended to --record: the labels given with --label KEY=VALUE, the exit status, the epoch-end times
in seconds since the start, the peak RSS in KiB, the CPU seconds and the two load readings.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def time_report_fields(time_report):
    """Peak RSS (KiB) and CPU seconds (user + system) from /usr/bin/time -v's report."""
    fields = {}
    with open(time_report) as f:
        for line in f:
            key, _, value = line.strip().rpartition(": ")
            fields[key] = value
    try:
        return (int(fields["Maximum resident set size (kbytes)"]),
                float(fields["User time (seconds)"]) + float(fields["System time (seconds)"]))
    except KeyError as missing:
        raise RuntimeError("%s: no %s line" % (time_report, missing)) from None


def watch_stdout(proc, pattern, log, start):
    ends = []
    for raw in proc.stdout:
        now = time.monotonic() - start
        line = raw.decode("utf-8", "replace")
        log.write(line)
        if pattern.search(line):
            ends.append(now)
    proc.wait()
    return ends


def watch_file(proc, path, poll, start):
    ends, seen = [], 0
    while True:
        finished = proc.poll() is not None
        now = time.monotonic() - start
        try:
            with open(path, "rb") as f:
                count = f.read().count(b"\n")
        except FileNotFoundError:
            count = 0
        ends.extend([now] * (count - seen))
        seen = count
        if finished:
            return ends
        time.sleep(poll)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", required=True, help="JSON-lines file the run is appended to")
    parser.add_argument("--log", required=True, help="the process's stdout and stderr")
    parser.add_argument("--nice", type=int, default=-10)
    parser.add_argument("--stdout-pattern", help="regex of the epoch-end line on stdout")
    parser.add_argument("--watch-file", help="file that gains one line per epoch")
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE copied to the record")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or (args.stdout_pattern is None) == (args.watch_file is None):
        parser.error("give a command and exactly one of --stdout-pattern and --watch-file")

    time_report = args.log + ".time"
    wrapped = ["nice", "-n", str(args.nice), "/usr/bin/time", "-v", "-o", time_report, "--"] + command
    record = dict(item.split("=", 1) for item in args.label)
    record["load_before"] = load_average()
    with open(args.log, "w") as log:
        start = time.monotonic()
        if args.stdout_pattern:
            proc = subprocess.Popen(wrapped, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            ends = watch_stdout(proc, re.compile(args.stdout_pattern), log, start)
        else:
            proc = subprocess.Popen(wrapped, stdout=log, stderr=subprocess.STDOUT)
            ends = watch_file(proc, args.watch_file, args.poll, start)
        wall = time.monotonic() - start
    rss, cpu = time_report_fields(time_report)
    record.update(load_after=load_average(), exit_status=proc.returncode, wall_seconds=wall,
                  epoch_ends=ends, peak_rss_kib=rss, cpu_seconds=cpu)
    with open(args.record, "a") as f:
        f.write(json.dumps(record) + "\n")
    print("%s %s %s: exit %d, %d epochs, epoch ends %s s, peak RSS %.2f GiB, load %s -> %s"
          % (record.get("side"), record.get("model"), record.get("precision"), proc.returncode,
             len(ends), " ".join("%.1f" % t for t in ends), record["peak_rss_kib"] / 1024 ** 2,
             record["load_before"][0], record["load_after"][0]), file=sys.stderr)
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
