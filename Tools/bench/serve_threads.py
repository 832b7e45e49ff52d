"""Where `spool serve`'s CPU per workflow goes, by thread: the workload of `spool bench serve`
(Tools/bench/serve.py: the Python SDK's client and worker, one-activity workflows), with the
server's CPU (utime + stime from /proc/PID/task/TID/stat) over the measured workflows summed per
thread group: NIO's event loops (`NIO-*`), Swift's cooperative pool (Dispatch's `com.apple.root.*qos*`
threads, whose names the kernel keeps truncated), the log's writer and syncers (`spool-writer`,
`spool-sync*`), and the rest.

    .build/venv/bin/python Tools/bench/serve_threads.py --spool .build/release/spool --runs 3
"""

import argparse
import asyncio
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402

snapshots: list[dict[str, float]] = []
original_cpu_seconds = serve.cpu_seconds


def group(name: str) -> str:
    if name.startswith("NIO-"):
        return "NIO event loops"
    if name.endswith("qos") or ".root." in name or "qos." in name:
        return "Swift's cooperative pool"
    if name.startswith("spool-writer") or name.startswith("spool-sync"):
        return "log writer + syncers"
    return "other (main, …)"


def threads(pid: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except FileNotFoundError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        key = group(name)
        totals[key] = totals.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / serve.TICKS
    return totals


def recording_cpu_seconds(pid: int) -> float:
    snapshots.append(threads(pid))
    return original_cpu_seconds(pid)


serve.cpu_seconds = recording_cpu_seconds


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spool", required=True)
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    per_group: dict[str, list[float]] = {}
    totals = []
    for run in range(1, args.runs + 1):
        snapshots.clear()
        result = await serve.one_run(serve.Spool(args.spool), args.workflows, args.concurrency, min(50, args.workflows))
        before, after = snapshots[0], snapshots[1]
        line = []
        for key in sorted(set(before) | set(after)):
            ms = 1000 * (after.get(key, 0) - before.get(key, 0)) / args.workflows
            per_group.setdefault(key, []).append(ms)
            line.append(f"{key} {ms:.3f}")
        totals.append(result["server_cpu_ms_per_workflow"])
        print(f"run {run}: {result['workflows_per_second']:.0f} wf/s, server CPU {result['server_cpu_ms_per_workflow']:.3f} ms/wf: "
              + ", ".join(line), flush=True)
    print(f"median server CPU {statistics.median(totals):.3f} ms per workflow")
    for key, values in per_group.items():
        print(f"median {key}: {statistics.median(values):.3f} ms per workflow")


if __name__ == "__main__":
    asyncio.run(main())
