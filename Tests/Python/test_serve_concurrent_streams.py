"""More than 100 calls open at once on one SDK connection.

Until 2026-12-06 `spool serve` did not advertise SETTINGS_MAX_CONCURRENT_STREAMS, so the SDKs' h2
client assumed no limit, while NIOHTTP2 (1.46) enforced an unadvertised 100: the 101st open
stream got GOAWAY PROTOCOL_ERROR and every call on the connection failed with a broken pipe (the
SDK retried them: 1.5 StartWorkflowExecution and 4-5 history long polls per workflow with 100
workflows started at once). The server now advertises its limit and the client queues beyond it.
Docs/measurements/2026-12-06-serve-concurrent-streams.md has the diagnosis."""

import asyncio
import socket
import urllib.request
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import PollActivityTaskQueueRequest, PollActivityTaskQueueResponse
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from conftest import Server

WORKFLOWS = 200
POLLS = 150


@activity.defn
async def triple(n: int) -> int:
    return 3 * n


@workflow.defn
class TripleWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(triple, n, start_to_close_timeout=timedelta(seconds=30))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_by_method(url: str) -> dict[str, int]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith('spool_rpc_requests_total{method="'):
            name, value = line.rsplit(" ", 1)
            counts[name.split('"')[1]] = int(float(value))
    return counts


def test_two_hundred_concurrent_workflows_on_one_connection(tmp_path):
    """200 execute_workflow calls at once, client and worker on one connection: each start and
    each result's history long poll reaches the server exactly once (a dropped connection makes
    the SDK send them again)."""
    port = free_port()
    server = Server(tmp_path / "spool-data", ["--metrics", f"127.0.0.1:{port}"])
    url = f"http://127.0.0.1:{port}/metrics"

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"streams-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[TripleWorkflow], activities=[triple],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            return await asyncio.gather(*(
                client.execute_workflow(TripleWorkflow.run, n, id=f"streams-{n}-{uuid.uuid4()}", task_queue=queue,
                                        execution_timeout=timedelta(seconds=100))
                for n in range(WORKFLOWS)))

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 120)) == [3 * n for n in range(WORKFLOWS)]
        counts = requests_by_method(url)
        assert counts["StartWorkflowExecution"] == WORKFLOWS, counts
        assert counts["GetWorkflowExecutionHistory"] == WORKFLOWS, counts
        assert counts["RespondActivityTaskCompleted"] == WORKFLOWS, counts
    finally:
        server.stop()


def test_150_long_polls_open_on_one_connection(tmp_path):
    """150 activity polls held open on one connection all stay open until the shutdown answers
    them empty; none fails with a transport error."""
    port = free_port()
    server = Server(tmp_path / "spool-data", ["--metrics", f"127.0.0.1:{port}"])
    url = f"http://127.0.0.1:{port}/metrics"

    async def scenario():
        client = await Client.connect(server.address)
        queue = TaskQueue(name=f"idle-{uuid.uuid4()}")
        polls = [asyncio.create_task(client.workflow_service.poll_activity_task_queue(
                     PollActivityTaskQueueRequest(namespace="default", task_queue=queue, identity=f"p{i}"), retry=False))
                 for i in range(POLLS)]
        # Wait until the server has every poll, or a poll has ended (it should not before the shutdown).
        while requests_by_method(url).get("PollActivityTaskQueue", 0) < POLLS and not any(p.done() for p in polls):
            await asyncio.sleep(0.05)
        ended_early = [p for p in polls if p.done()]
        await asyncio.to_thread(server.stop)
        return ended_early, await asyncio.gather(*polls, return_exceptions=True)

    try:
        ended_early, results = asyncio.run(asyncio.wait_for(scenario(), 60))
        failures = [r for r in results if not isinstance(r, PollActivityTaskQueueResponse)]
        assert not failures, f"{len(failures)} of {POLLS} polls failed, e.g. {failures[0]!r}"
        assert not ended_early
        assert all(not r.task_token for r in results)
    finally:
        server.stop()
