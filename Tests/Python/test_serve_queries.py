"""Queries, signal-with-start and asynchronous activity completion: Temporal's Python SDK,
unmodified, against `spool serve`; the histories those runs wrote replay in the SDK's Replayer."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker


@workflow.defn
class CounterWorkflow:
    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.count

    @workflow.signal
    def add(self, amount: int) -> None:
        self.count += amount

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def value(self) -> int:
        return self.count

    @workflow.query
    def broken(self) -> int:
        raise ValueError("this query always fails")


def worker(client, queue, **kwargs):
    return Worker(client, task_queue=queue, workflow_runner=UnsandboxedWorkflowRunner(), **kwargs)


async def replay(client, handle, workflows):
    """Replays the run's history through the SDK: raises on a non-determinism error."""
    history = await handle.fetch_history()
    await Replayer(workflows=workflows, workflow_runner=UnsandboxedWorkflowRunner()).replay_workflow(history)


def test_queries_on_a_running_and_a_completed_workflow(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"queries-{uuid.uuid4()}"
        async with worker(client, queue, workflows=[CounterWorkflow]):
            handle = await client.start_workflow(CounterWorkflow.run, id=f"counter-{uuid.uuid4()}", task_queue=queue)
            # Idle after its first task: a query-only task.
            assert await handle.query(CounterWorkflow.value) == 0
            # A signal and a query right behind it: the query sees the signal (it rides the
            # workflow task that carries the signal, or follows it).
            await handle.signal(CounterWorkflow.add, 5)
            assert await handle.query(CounterWorkflow.value) == 5
            with pytest.raises(WorkflowQueryFailedError) as failed:
                await handle.query(CounterWorkflow.broken)
            assert "this query always fails" in str(failed.value)
            await handle.signal(CounterWorkflow.finish)
            assert await handle.result() == 5
            # A completed run is queried by replaying its whole history on a worker.
            assert await handle.query(CounterWorkflow.value) == 5
            before = (await handle.fetch_history()).events
        # Queries wrote nothing: the history is what the signals and tasks wrote.
        after = (await handle.fetch_history()).events
        assert len(after) == len(before)
        await replay(client, handle, [CounterWorkflow])

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_signal_with_start_starts_then_signals(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"sws-{uuid.uuid4()}"
        workflow_id = f"sws-{uuid.uuid4()}"
        async with worker(client, queue, workflows=[CounterWorkflow]):
            first = await client.start_workflow(CounterWorkflow.run, id=workflow_id, task_queue=queue,
                                                start_signal="add", start_signal_args=[2])
            second = await client.start_workflow(CounterWorkflow.run, id=workflow_id, task_queue=queue,
                                                 start_signal="add", start_signal_args=[3])
            assert second.result_run_id == first.result_run_id
            await first.signal(CounterWorkflow.finish)
            assert await first.result() == 5
        events = (await first.fetch_history()).events
        # Temporal's order: started, the signal, then the first workflow task.
        names = [workflow_event.event_type for workflow_event in events[:3]]
        from temporalio.api.enums.v1 import EventType
        assert names == [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
                         EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED]
        await replay(client, first, [CounterWorkflow])

    asyncio.run(asyncio.wait_for(scenario(), 60))


@activity.defn
async def wait_for_approval(key: str) -> str:
    activity.raise_complete_async()


@workflow.defn
class ApprovalWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        return await workflow.execute_activity(
            wait_for_approval, key, activity_id="approval", start_to_close_timeout=timedelta(seconds=30))


def test_an_activity_completed_asynchronously_by_id(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"async-{uuid.uuid4()}"
        async with worker(client, queue, workflows=[ApprovalWorkflow], activities=[wait_for_approval]):
            handle = await client.start_workflow(ApprovalWorkflow.run, "k", id=f"approval-{uuid.uuid4()}", task_queue=queue)
            # Wait until the attempt is running (the worker returned without an outcome).
            for _ in range(200):
                described = await handle.describe()
                pending = described.raw_description.pending_activities
                if pending and pending[0].state == 2:   # PENDING_ACTIVITY_STATE_STARTED
                    break
                await asyncio.sleep(0.05)
            by_id = client.get_async_activity_handle(workflow_id=handle.id, run_id=handle.result_run_id,
                                                     activity_id="approval")
            await by_id.heartbeat("halfway")
            await by_id.complete("approved")
            assert await handle.result() == "approved"
        await replay(client, handle, [ApprovalWorkflow])

    asyncio.run(asyncio.wait_for(scenario(), 60))
