"""`spool serve` killed with SIGKILL while 200 workflows run with a Python worker connected,
then restarted on the same directory and port: all 200 complete with the right result, the SDK
reconnecting by itself, and an activity runs again only if it may have been in flight at the
kill (issue 22, "Crash under load")."""

import asyncio
import signal
import subprocess
import time
import uuid
from collections import Counter
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from conftest import spool_binary

WORKFLOWS = 200
ACTIVITY_SLOTS = 20
executions: Counter = Counter()


@activity.defn
async def square(key: str, n: int) -> int:
    executions[key] += 1
    await asyncio.sleep(0.05)
    return n * n


@workflow.defn
class SquareWorkflow:
    @workflow.run
    async def run(self, key: str, n: int) -> int:
        first = await workflow.execute_activity(
            square, args=[key + "/1", n], start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200)))
        second = await workflow.execute_activity(
            square, args=[key + "/2", n + 1], start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200)))
        return first + second


def start_server(data, listen: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([str(spool_binary()), "serve", "--data", str(data), "--listen", listen],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert "listening on " in line, (line, process.stderr.read() if process.poll() is not None else "")
    return process, line.split("listening on ", 1)[1].split(",", 1)[0]


def test_sigkill_under_load_loses_no_workflow(tmp_path):
    data = tmp_path / "spool-data"
    server, address = start_server(data, "127.0.0.1:0")

    async def scenario():
        client = await Client.connect(address)
        queue = f"crash-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[SquareWorkflow], activities=[square],
                          workflow_runner=UnsandboxedWorkflowRunner(), max_concurrent_activities=ACTIVITY_SLOTS):
            handles = [await client.start_workflow(SquareWorkflow.run, args=[f"w{i}", i], id=f"crash-{i}-{uuid.uuid4()}",
                                                   task_queue=queue, execution_timeout=timedelta(seconds=120))
                       for i in range(WORKFLOWS)]
            # Kill once some, not all, activities have run.
            while sum(executions.values()) < WORKFLOWS // 2:
                await asyncio.sleep(0.01)
            server.send_signal(signal.SIGKILL)
            server.wait()
            at_kill = sum(executions.values())
            restarted, _ = await asyncio.to_thread(start_server, data, address)
            try:
                results = await asyncio.wait_for(asyncio.gather(*(handle.result() for handle in handles)), 100)
                histories = [await handle.fetch_history() for handle in handles]
            finally:
                restarted.terminate()
                restarted.wait(timeout=10)
        return at_kill, results, histories

    try:
        at_kill, results, histories = asyncio.run(asyncio.wait_for(scenario(), 150))
    finally:
        if server.poll() is None:
            server.kill()
    assert results == [i * i + (i + 1) * (i + 1) for i in range(WORKFLOWS)]
    assert 0 < at_kill < 2 * WORKFLOWS
    # Every activity ran; one ran again only if it may have been running (or its completion in
    # flight) at the kill: at most the worker's activity slots.
    assert set(executions) == {f"w{i}/{k}" for i in range(WORKFLOWS) for k in (1, 2)}
    again = sum(count - 1 for count in executions.values())
    assert again <= ACTIVITY_SLOTS, executions.most_common(5)
    # Each history completes each activity once.
    for history in histories:
        completed = [e for e in history.events if e.HasField("activity_task_completed_event_attributes")]
        assert len(completed) == 2
