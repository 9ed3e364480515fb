#!/usr/bin/env python3
"""Runs one `mhim sweep --array` process and records the CPU-seconds each job cost it.

For results written by a binary that predates runtime.cpu_seconds (mhim records it itself since the
pruning branch): the array process runs its jobs one at a time in-process, so the process's user +
system time (/proc/PID/stat) between a job's "claimed" and its "ok"/"failed"/"interrupted" log line
is that job's cost, whatever else shares the machine.

    scripts/cpu_per_job.py OUT.jsonl -- nice -n 10 mhim sweep S.yaml --array --results DIR ...
    scripts/cpu_per_job.py --inject OUT.jsonl... DIR   # writes runtime.cpu_seconds into DIR/results

The command's output is copied to stdout. The first form writes one {"job_id", "cpu_seconds"} line
per finished job to OUT.jsonl; --inject adds them to the result files of DIR that lack the field.
"""
import json
import os
import re
import subprocess
import sys

LINE = re.compile(r"\] ([0-9a-f]{16}) (claimed|ok|failed|interrupted|quarantined)\b")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5), i.e. 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def record(out_path, command):
    # `nice` and `timeout` exec or wait for the real process; find mhim itself among the children.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = {}
    with open(out_path, "a") as out:
        for line in proc.stdout:
            sys.stdout.write(line)
            m = LINE.search(line)
            if not m:
                continue
            pid = int(re.search(r"\[[^\]:]*:(\d+)\]", line).group(1))
            try:
                now = cpu_seconds(pid)
            except OSError:
                continue
            if m.group(2) == "claimed":
                started[m.group(1)] = now
            elif m.group(1) in started:
                spent = now - started.pop(m.group(1))
                out.write(json.dumps({"job_id": m.group(1), "cpu_seconds": spent}) + "\n")
                out.flush()
    return proc.wait()


def inject(paths, results_dir):
    cost = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                cost[entry["job_id"]] = entry["cpu_seconds"]
    results = os.path.join(results_dir, "results")
    written = 0
    for name in sorted(os.listdir(results)):
        path = os.path.join(results, name)
        with open(path) as f:
            result = json.load(f)
        if result["job_id"] not in cost or "cpu_seconds" in result.get("runtime", {}):
            continue
        result.setdefault("runtime", {})["cpu_seconds"] = cost[result["job_id"]]
        with open(path + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(path + ".tmp", path)
        written += 1
    print(f"{written} results of {results_dir} got runtime.cpu_seconds", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--inject":
        inject(sys.argv[2:-1], sys.argv[-1])
    elif len(sys.argv) >= 4 and sys.argv[2] == "--":
        sys.exit(record(sys.argv[1], sys.argv[3:]))
    else:
        sys.exit(__doc__)
