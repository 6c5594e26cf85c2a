#!/usr/bin/env python3
"""Runs commands round-robin and prints, per run, wall time and CPU time (user + system) with microsecond
resolution from wait4(2) -- /usr/bin/time and /proc only give 10 ms.

Usage: rusage.py RUNS WARMUP JSON   where JSON is [[label, [argv...]], ...]
Output: one JSON object {label: [{"wall_ms": .., "cpu_ms": .., "code": ..}, ...]} on stdout.
(Peak RSS is not taken from here: a child forked from Python starts with Python's high-water mark.)
"""
import json
import os
import subprocess
import sys
import time


def once(argv):
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_ms": wall * 1000, "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000, "code": proc.returncode}


def main():
    runs, warmup, commands = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    out = {label: [] for label, _ in commands}
    for i in range(warmup + runs):
        for label, argv in commands:
            r = once(argv)
            if i >= warmup:
                out[label].append(r)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
