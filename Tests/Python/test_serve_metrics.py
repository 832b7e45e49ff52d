"""`spool serve --metrics` (issue 22, point 4): Prometheus text with per-RPC counts, errors and
latency, and the engine's own metrics, after real SDK traffic."""

import asyncio
import re
import socket
import urllib.request
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from conftest import Server


@activity.defn
async def double(n: int) -> int:
    return 2 * n


@workflow.defn
class DoubleWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(double, n, start_to_close_timeout=timedelta(seconds=10))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> dict[str, float]:
    """Samples by their full name with labels, e.g. 'spool_rpc_requests_total{method="StartWorkflowExecution"}'."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_rpcs_errors_and_workflows(tmp_path):
    port = free_port()
    server = Server(tmp_path / "spool-data", ["--metrics", f"127.0.0.1:{port}"])
    url = f"http://127.0.0.1:{port}/metrics"

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"metrics-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[DoubleWorkflow], activities=[double],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            for n in range(3):
                assert await client.execute_workflow(DoubleWorkflow.run, n, id=f"m-{uuid.uuid4()}", task_queue=queue,
                                                     execution_timeout=timedelta(seconds=30)) == 2 * n
        with pytest.raises(Exception):
            await client.get_workflow_handle("no-such-workflow").describe()

    try:
        assert server.first_line.endswith(f", metrics on http://127.0.0.1:{port}/metrics"), server.first_line
        asyncio.run(asyncio.wait_for(scenario(), 60))
        samples = scrape(url)
        assert samples['spool_rpc_requests_total{method="StartWorkflowExecution"}'] == 3
        assert samples['spool_rpc_errors_total{method="DescribeWorkflowExecution",code="notFound"}'] >= 1
        assert samples['spool_engine_workflows_started_total'] == 3
        assert samples['spool_engine_workflows_closed_total{status="completed"}'] == 3
        assert samples['spool_rpc_duration_seconds_count{method="StartWorkflowExecution"}'] == 3
        assert any(name.startswith("spool_engine_append_duration_bucket") for name in samples)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        assert missing.value.code == 404
    finally:
        server.stop()
