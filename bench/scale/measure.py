#!/usr/bin/env python3
"""Runs a command, prints one result line: LABEL, wall seconds, exit code
and the command's peak RSS (getrusage of the waited child, MiB).

usage: measure.py LABEL LOGFILE -- COMMAND [ARGS...]
"""
import resource
import subprocess
import sys
import time


def main():
    label, log = sys.argv[1], sys.argv[2]
    argv = sys.argv[sys.argv.index("--") + 1:]
    started = time.monotonic()
    with open(log, "ab") as out:
        code = subprocess.call(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{label}\t{wall:.2f}\t{code}\t{peak:.1f}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
