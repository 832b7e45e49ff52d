"""Workflows that talk to workflows through `spool serve` (issue 19 through issue 22's SDK
acceptance suite): child workflows, signals and cancels to other workflows, updates and
update-with-start, driven by Temporal's Python SDK, unmodified. Each history Spool wrote is
replayed through the SDK's Replayer: a difference from what the workflow code does fails it."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker


@workflow.defn
class Shipment:
    @workflow.run
    async def run(self, parcel: str) -> str:
        if parcel == "broken":
            raise ApplicationError("parcel broken", type="Damaged", non_retryable=True)
        return f"shipped {parcel}"


@workflow.defn
class Order:
    @workflow.run
    async def run(self, parcels: list[str]) -> list[str]:
        results = []
        for parcel in parcels:
            try:
                results.append(await workflow.execute_child_workflow(
                    Shipment.run, parcel, id=f"{workflow.info().workflow_id}-{parcel}",
                    task_queue=workflow.info().task_queue))
            except ChildWorkflowError as error:
                results.append(f"failed: {error.cause.message}")
        return results


@workflow.defn
class Mailbox:
    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: "stop" in self.items)
        return self.items

    @workflow.signal
    def put(self, item: str) -> None:
        self.items.append(item)


@workflow.defn
class Sender:
    @workflow.run
    async def run(self, target: str) -> str:
        handle = workflow.get_external_workflow_handle(target)
        await handle.signal(Mailbox.put, "hello")
        await handle.signal(Mailbox.put, "stop")
        try:
            await workflow.get_external_workflow_handle(f"{target}-missing").signal(Mailbox.put, "lost")
        except ApplicationError as error:
            return f"missing target: {error}"
        return "missing target signaled?"


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "never"


@workflow.defn
class Canceller:
    @workflow.run
    async def run(self) -> str:
        child = await workflow.start_child_workflow(Sleeper.run, id=f"{workflow.info().workflow_id}-sleeper")
        await workflow.get_external_workflow_handle(child.id).cancel()
        try:
            await child
        except ChildWorkflowError as error:
            return type(error.cause).__name__
        return "child finished"


@workflow.defn
class Counter:
    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.update
    def add(self, amount: int) -> int:
        self.total += amount
        return self.total

    @add.validator
    def check_add(self, amount: int) -> None:
        if amount < 0:
            raise ValueError("amounts are positive")

    @workflow.signal
    def finish(self) -> None:
        self.done = True


WORKFLOWS = [Shipment, Order, Mailbox, Sender, Sleeper, Canceller, Counter]


def run_with_worker(server, body, timeout=60):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"related-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=WORKFLOWS, workflow_runner=UnsandboxedWorkflowRunner()):
            result = await body(client, queue)
        return result

    return asyncio.run(asyncio.wait_for(scenario(), timeout))


async def replay(client: Client, workflow_id: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    await Replayer(workflows=WORKFLOWS, workflow_runner=UnsandboxedWorkflowRunner()).replay_workflow(history)


async def event_types(client: Client, workflow_id: str) -> list[int]:
    return [e.event_type async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]


def test_child_workflows_deliver_results_and_failures_to_the_parent(server):
    async def body(client, queue):
        order_id = f"order-{uuid.uuid4()}"
        result = await client.execute_workflow(Order.run, ["a", "broken"], id=order_id, task_queue=queue,
                                               execution_timeout=timedelta(seconds=40))
        types = await event_types(client, order_id)
        await replay(client, order_id)
        child = await client.get_workflow_handle(f"{order_id}-a").describe()
        return result, types, child

    result, types, child = run_with_worker(server, body)
    assert result == ["shipped a", "failed: parcel broken"]
    for expected in (EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
                     EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED,
                     EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
                     EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED):
        assert expected in types
    assert child.raw_description.workflow_execution_info.parent_execution.workflow_id.startswith("order-")


def test_a_workflow_signals_another_and_a_missing_target_fails_the_signal(server):
    async def body(client, queue):
        target = f"mailbox-{uuid.uuid4()}"
        mailbox = await client.start_workflow(Mailbox.run, id=target, task_queue=queue)
        sender = await client.execute_workflow(Sender.run, target, id=f"sender-{uuid.uuid4()}", task_queue=queue)
        items = await mailbox.result()
        await replay(client, target)
        return sender, items

    sender, items = run_with_worker(server, body)
    assert items == ["hello", "stop"]
    assert sender.startswith("missing target")


def test_a_child_is_cancelled_through_request_cancel_external(server):
    async def body(client, queue):
        workflow_id = f"canceller-{uuid.uuid4()}"
        result = await client.execute_workflow(Canceller.run, id=workflow_id, task_queue=queue)
        await replay(client, workflow_id)
        return result, await event_types(client, workflow_id)

    result, types = run_with_worker(server, body)
    assert result == "CancelledError"
    assert EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED in types
    assert EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED in types


def test_updates_are_accepted_completed_rejected_and_deduplicated(server):
    async def body(client, queue):
        workflow_id = f"counter-{uuid.uuid4()}"
        handle = await client.start_workflow(Counter.run, id=workflow_id, task_queue=queue)
        first = await handle.execute_update(Counter.add, 5, id="add-5")
        again = await handle.execute_update(Counter.add, 5, id="add-5")
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await handle.execute_update(Counter.add, -1)
        started = await handle.start_update(Counter.add, 2, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        second = await started.result()
        await handle.signal(Counter.finish)
        total = await handle.result()
        await replay(client, workflow_id)
        types = await event_types(client, workflow_id)
        return first, again, str(rejected.value.cause), second, total, types

    first, again, rejection, second, total, types = run_with_worker(server, body)
    assert (first, again, second, total) == (5, 5, 7, 7)
    assert "amounts are positive" in rejection
    # Two accepted updates (the duplicate is answered from the first), none for the rejection.
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 2
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) == 2


def test_update_with_start_starts_a_new_run_or_updates_the_running_one(server):
    async def body(client, queue):
        workflow_id = f"counter-{uuid.uuid4()}"

        def operation():
            return WithStartWorkflowOperation(Counter.run, id=workflow_id, task_queue=queue,
                                              id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)

        first_op = operation()
        first = await client.execute_update_with_start_workflow(Counter.add, 3, start_workflow_operation=first_op)
        first_run = (await first_op.workflow_handle()).result_run_id
        second_op = operation()
        second = await client.execute_update_with_start_workflow(Counter.add, 4, start_workflow_operation=second_op)
        second_run = (await second_op.workflow_handle()).result_run_id
        handle = client.get_workflow_handle(workflow_id)
        await handle.signal(Counter.finish)
        return first, second, first_run, second_run, await handle.result()

    first, second, first_run, second_run, total = run_with_worker(server, body)
    assert (first, second, total) == (3, 7, 7)
    assert first_run == second_run


def test_an_update_without_a_wait_policy_waits_for_acceptance(server):
    """Temporal's UNSPECIFIED lifecycle stage: the call answers once the update is accepted."""
    from temporalio.api.update.v1 import Input, Meta, Request
    from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionRequest
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage

    async def body(client, queue):
        workflow_id = f"counter-{uuid.uuid4()}"
        handle = await client.start_workflow(Counter.run, id=workflow_id, task_queue=queue)
        payloads = await client.data_converter.encode([4])
        response = await client.workflow_service.update_workflow_execution(UpdateWorkflowExecutionRequest(
            namespace="default", workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            request=Request(meta=Meta(update_id="no-policy"), input=Input(name="add", args=Payloads(payloads=payloads)))))
        await handle.signal(Counter.finish)
        return response, await handle.result()

    from temporalio.api.common.v1 import Payloads
    response, total = run_with_worker(server, body)
    assert response.stage >= UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
    assert response.update_ref.update_id == "no-policy"
    assert total == 4
