#!/usr/bin/env python3
"""Instructions per workflow of `spool-lab bench workflows`, counted by callgrind: a figure that
stays the same from run to run on a shared machine, where CPU seconds move by 2x.

    Tools/bench/callgrind.py base=/tmp/spool-lab-base new=.build/release/spool-lab

For each binary, runs `bench workflows --runs 1 --no-baseline` under `valgrind --tool=callgrind`
twice, with --small and --large workflows, and prints the difference of the two instruction
counts divided by the difference of the workflow counts: what one more workflow costs the engine,
its in-process workers and clients, without the process's start, the engine's open or the bench's
own set-up (which the subtraction cancels). The checkpoint written at close encodes every run, so
its share per run stays in the figure, as a periodic checkpoint's would in a long run. Everything after `--` goes to
`bench workflows` (for example `-- --activities 3`). With --keep DIR, the callgrind outputs of
each binary's runs stay there for `callgrind_annotate`; with --functions N, the N functions with
the most instructions per workflow (their own, not their callees') are printed, by the same
subtraction.

Valgrind runs one thread at a time, so groups commit fewer appends per fdatasync than in a
normal run; compare binaries with each other under it, not with `bench workflows`' CPU seconds.
Needs valgrind (Debian: `apt-get install valgrind`). Valgrind 3.19 cannot read the debug
information Swift 6 writes, so each binary is run from a copy without it (`strip --strip-debug`;
the symbol table stays, so `callgrind_annotate` still names functions).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import binaries


def instructions(binary, workflows, extra, data, out_file):
    shutil.rmtree(data, ignore_errors=True)
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
               binary, "bench", "workflows", "--runs", "1", "--no-baseline", "--data", data,
               "--workflows", str(workflows), *extra]
    run = subprocess.run(command, capture_output=True, text=True)
    match = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or not match:
        sys.exit(f"{' '.join(command)} failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr[-3000:]}")
    return int(match.group(1))


def self_costs(out_file):
    """Instructions by function (self cost), from callgrind_annotate."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", out_file],
                          check=True, capture_output=True, text=True).stdout
    costs = {}
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)$", line)
        if match and "PROGRAM TOTALS" not in line:
            name = match.group(2).split(" [")[0].removeprefix("???:")
            costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1000, help="workflows of the first run (default 1000)")
    parser.add_argument("--large", type=int, default=3000, help="workflows of the second run (default 3000)")
    parser.add_argument("--keep", help="directory for each binary's callgrind outputs (callgrind.NAME.small.out, .large.out)")
    parser.add_argument("--functions", type=int, default=0,
                        help="also print the N functions with the most instructions per workflow (self cost, large run minus small)")
    parser.add_argument("binaries", nargs="+", help="NAME=PATH of a spool-lab executable; the first is the baseline")
    args, named, extra = binaries.parse(parser, sys.argv[1:])
    if not 0 < args.small < args.large:
        sys.exit(f"--small ({args.small}) must be positive and below --large ({args.large})")
    for tool in ("valgrind", "strip"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install {'valgrind' if tool == 'valgrind' else 'binutils'})")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "data")
        for name, path in named:
            stripped = os.path.join(scratch, f"spool-lab-{len(results)}")
            subprocess.run(["strip", "--strip-debug", "-o", stripped, path], check=True)
            small_out = os.path.join(args.keep or scratch, f"callgrind.{name}.small.out")
            large_out = os.path.join(args.keep or scratch, f"callgrind.{name}.large.out")
            small = instructions(stripped, args.small, extra, data, small_out)
            large = instructions(stripped, args.large, extra, data, large_out)
            per_workflow = (large - small) / (args.large - args.small)
            results.append((name, per_workflow))
            print(f"{name:>12}: {small:,} instructions for {args.small:,} workflows, {large:,} for {args.large:,}: "
                  f"{per_workflow:,.0f} per workflow", flush=True)
            if args.functions > 0:
                small_costs, large_costs = self_costs(small_out), self_costs(large_out)
                rows = sorted(((large_costs.get(f, 0) - small_costs.get(f, 0)) / (args.large - args.small), f)
                              for f in set(small_costs) | set(large_costs))
                for cost, function in reversed(rows[-args.functions:]):
                    print(f"{cost:>14,.0f}  {function[:150]}")
    print()
    base = results[0][1]
    for name, per_workflow in results:
        print(f"{name:>12}: {per_workflow:,.0f} instructions per workflow ({per_workflow / base:.3f}× {results[0][0]})")


if __name__ == "__main__":
    main()
