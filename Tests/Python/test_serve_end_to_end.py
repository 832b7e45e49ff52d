"""Temporal's Python SDK, unmodified, against `spool serve`."""

import asyncio
import os
import signal
import stat
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))


def test_a_workflow_calls_an_activity(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"greetings-{uuid.uuid4()}"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[GreetingWorkflow],
            activities=[greet],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            return await client.execute_workflow(
                GreetingWorkflow.run, "Spool", id=f"greeting-{uuid.uuid4()}", task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == "Hello, Spool!"


attempts: dict[str, int] = {}


@activity.defn
async def flaky(key: str) -> int:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] == 1:
        raise RuntimeError("first attempt fails")
    return activity.info().attempt


@workflow.defn
class RetryWorkflow:
    @workflow.run
    async def run(self, key: str) -> int:
        return await workflow.execute_activity(
            flaky, key, start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


def test_a_failed_activity_is_retried_through_the_activity_queue(server):
    """Attempt 1 runs eagerly and fails; the engine retries and attempt 2 comes through a poll."""

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"retries-{uuid.uuid4()}"
        async with Worker(
            client, task_queue=queue, workflows=[RetryWorkflow], activities=[flaky],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            return await client.execute_workflow(
                RetryWorkflow.run, queue, id=f"retry-{uuid.uuid4()}", task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == 2


def test_an_unimplemented_method_answers_unimplemented_naming_it(server):
    async def scenario():
        client = await Client.connect(server.address)
        from temporalio.api.workflowservice.v1 import ListSchedulesRequest

        with pytest.raises(RPCError) as raised:
            await client.workflow_service.list_schedules(ListSchedulesRequest(namespace="default"))
        return raised.value

    error = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert error.status == RPCStatusCode.UNIMPLEMENTED
    assert "ListSchedules" in error.message


def test_the_server_prints_its_address_and_keeps_its_directory_private(server):
    assert server.first_line.startswith("spool serve: listening on 127.0.0.1:")
    assert str(server.data) in server.first_line
    assert stat.S_IMODE(os.stat(server.data).st_mode) == 0o700


def test_sigterm_answers_a_waiting_poll_and_stops_within_5_seconds(server):
    async def scenario():
        client = await Client.connect(server.address)
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import PollWorkflowTaskQueueRequest

        poll = asyncio.create_task(
            client.workflow_service.poll_workflow_task_queue(
                PollWorkflowTaskQueueRequest(namespace="default", task_queue=TaskQueue(name="idle"), identity="test")
            )
        )
        await asyncio.sleep(0.5)
        took = await asyncio.to_thread(server.stop, signal.SIGTERM)
        response = await asyncio.wait_for(poll, 5)
        return took, response

    took, response = asyncio.run(scenario())
    assert took < 5.0
    assert server.process.returncode == 0
    assert response.task_token == b""


def test_starting_a_running_workflow_id_raises_the_sdks_typed_error(server):
    from temporalio.exceptions import WorkflowAlreadyStartedError

    async def scenario():
        client = await Client.connect(server.address)
        workflow_id = f"once-{uuid.uuid4()}"
        # No worker polls this queue: the first run stays open.
        first = await client.start_workflow(GreetingWorkflow.run, "first", id=workflow_id, task_queue="nobody")
        with pytest.raises(WorkflowAlreadyStartedError) as raised:
            await client.start_workflow(GreetingWorkflow.run, "second", id=workflow_id, task_queue="nobody")
        return first, raised.value

    first, error = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert error.run_id == first.result_run_id


def test_describing_an_unknown_workflow_answers_not_found(server):
    async def scenario():
        client = await Client.connect(server.address)
        with pytest.raises(RPCError) as raised:
            await client.get_workflow_handle("no-such-workflow").describe()
        return raised.value

    assert asyncio.run(asyncio.wait_for(scenario(), 30)).status == RPCStatusCode.NOT_FOUND


@workflow.defn
class WaitForSignalWorkflow:
    def __init__(self) -> None:
        self.value: str | None = None

    @workflow.signal
    def deliver(self, value: str) -> None:
        self.value = value

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.value is not None)
        return f"got {self.value}"


def test_a_signal_reaches_a_waiting_workflow(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"signals-{uuid.uuid4()}"
        async with Worker(
            client, task_queue=queue, workflows=[WaitForSignalWorkflow],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            handle = await client.start_workflow(
                WaitForSignalWorkflow.run, id=f"signal-{uuid.uuid4()}", task_queue=queue,
            )
            await handle.signal(WaitForSignalWorkflow.deliver, "parcel")
            return await handle.result()

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == "got parcel"


def test_terminate_and_describe(server):
    from temporalio.client import WorkflowExecutionStatus

    async def scenario():
        client = await Client.connect(server.address)
        handle = await client.start_workflow(
            GreetingWorkflow.run, "never", id=f"doomed-{uuid.uuid4()}", task_queue="nobody"
        )
        running = await handle.describe()
        await handle.terminate("test over")
        return running, await handle.describe()

    running, terminated = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert running.status == WorkflowExecutionStatus.RUNNING
    assert running.task_queue == "nobody"
    assert terminated.status == WorkflowExecutionStatus.TERMINATED
    assert terminated.close_time is not None
