"""RPCs per workflow against `spool serve`: Temporal's Python SDK (client and worker on one
connection) runs 200 one-activity workflows, at most CONCURRENCY at once, after 20 to warm up;
prints the server's `spool_rpc_requests_total` per method per workflow (from `--metrics`) and the
server's CPU time per workflow. A dropped connection shows as more than one
StartWorkflowExecution or GetWorkflowExecutionHistory per workflow (the SDK sends them again).

    .build/venv/bin/python Tools/bench/serve_rpcs.py .build/release/spool 100
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import OneActivity, cpu_seconds, echo, free_port  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

WORKFLOWS = 200


def requests(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("spool_rpc_requests_total")}


async def run(address: str, url: str, pid: int, concurrency: int):
    client = await Client.connect(address)
    async with Worker(client, task_queue="q", workflows=[OneActivity], activities=[echo],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        await asyncio.gather(*(client.execute_workflow(OneActivity.run, i, id=f"w{uuid.uuid4()}", task_queue="q")
                               for i in range(20)))
        before, cpu0 = requests(url), cpu_seconds(pid)
        gate = asyncio.Semaphore(concurrency)

        async def one(i):
            async with gate:
                await client.execute_workflow(OneActivity.run, i, id=f"w{uuid.uuid4()}", task_queue="q")

        await asyncio.gather(*(one(i) for i in range(WORKFLOWS)))
        cpu, after = cpu_seconds(pid) - cpu0, requests(url)
    total = 0.0
    for name in sorted(after):
        delta = after[name] - before.get(name, 0)
        total += delta
        print(f"{name}: {delta / WORKFLOWS:.2f} per workflow")
    print(f"total {total / WORKFLOWS:.2f} RPCs per workflow; server CPU {cpu * 1000 / WORKFLOWS:.2f} ms per workflow")


def main():
    spool, concurrency = sys.argv[1], int(sys.argv[2])
    port, metrics = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="spool-serve-rpcs-") as data:
        server = subprocess.Popen([spool, "serve", "--data", data + "/d", "--listen", f"127.0.0.1:{port}",
                                   "--metrics", f"127.0.0.1:{metrics}"], stdout=subprocess.PIPE, text=True)
        try:
            server.stdout.readline()
            asyncio.run(run(f"127.0.0.1:{port}", f"http://127.0.0.1:{metrics}/metrics", server.pid, concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
