#!/usr/bin/env python3
"""A/B two or more `spool-lab` binaries on `bench workflows`, alternating, on a shared machine.

Machines here are shared and their speed moves from minute to minute, so a change is judged by
running the binaries in turn, several rounds, and comparing medians of the same rounds:

    Tools/bench/ab.py --rounds 5 base=/tmp/spool-lab-base new=.build/release/spool-lab \
        -- --workflows 20000

Everything after `--` goes to `bench workflows` (each run gets `--runs 1` and a fresh data
directory). Odd rounds run the binaries in the order given, even rounds in reverse: in two runs with
a fixed order, swapped between them, whichever binary ran first came out about 6% ahead. For a figure
that does not move between runs, count instructions with `Tools/bench/callgrind.py`. Prints each run's workflows/s and CPU ms per workflow, then the medians and each
binary's CPU ratio to the first one.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import binaries


def run_once(binary, extra, data):
    shutil.rmtree(data, ignore_errors=True)
    out = subprocess.run([binary, "bench", "workflows", "--runs", "1", "--data", data, *extra],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        # The table row of run 1: run, workflows/s, activities/s, p50, p99, events/s, B/wf, CPU ms/wf, ...
        if len(fields) >= 8 and fields[0] == "1":
            return float(fields[1].replace(",", "")), float(fields[7])
    sys.exit(f"no result row in the output of {binary}:\n{out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("binaries", nargs="+", help="NAME=PATH, the first is the baseline")
    args, named, extra = binaries.parse(parser, sys.argv[1:])
    results = {name: [] for name, _ in named}
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "data")
        for round_number in range(1, args.rounds + 1):
            # Every other round in reverse order: in two 6-round runs with the order swapped
            # (2026-12-07), whichever binary ran first in each round came out about 6% ahead.
            for name, path in (named if round_number % 2 == 1 else named[::-1]):
                rate, cpu = run_once(path, extra, data)
                results[name].append((rate, cpu))
                print(f"round {round_number} {name:>12}: {rate:>9,.0f} wf/s  {cpu:.3f} CPU ms/wf", flush=True)
    base_cpu = statistics.median(c for _, c in results[named[0][0]])
    print()
    for name, _ in named:
        rate = statistics.median(r for r, _ in results[name])
        cpu = statistics.median(c for _, c in results[name])
        print(f"median {name:>12}: {rate:>9,.0f} wf/s  {cpu:.3f} CPU ms/wf  ({cpu / base_cpu:.2f}× {named[0][0]}'s CPU)")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
