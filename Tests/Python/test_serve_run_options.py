"""Run-level options through `spool serve`, with Temporal's Python SDK unmodified: workflow
retries, cron, continue-as-new carrying memo and search attributes, upserts from workflow code,
the start delay and the execution timeout across runs. Expected values are Temporal's: what its history
service writes into WorkflowExecutionStarted / Completed / Failed / ContinuedAsNew and what
DescribeWorkflowExecution answers for the same calls. Every history these runs wrote replays
through the SDK's Replayer."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import ContinueAsNewInitiator, EventType, RetryState
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.exceptions import ApplicationError, TimeoutError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

KEYWORD = SearchAttributeKey.for_keyword("CustomKeywordField")


@pytest.fixture
def server(tmp_path):
    """`spool serve` with the search attribute these tests set registered, as Temporal requires
    (its dev server registers CustomKeywordField the same way, with --search-attribute)."""
    from conftest import Server

    running = Server(tmp_path / "spool-data", ["--search-attribute", "CustomKeywordField=Keyword"])
    yield running
    running.stop()


def worker(client, queue, workflows):
    return Worker(client, task_queue=queue, workflows=workflows, workflow_runner=UnsandboxedWorkflowRunner())


async def history_of(client, workflow_id, run_id):
    return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()


async def replay(history, workflows):
    """Replays a run's history through the SDK: raises on a non-determinism error."""
    await Replayer(workflows=workflows, workflow_runner=UnsandboxedWorkflowRunner()).replay_workflow(history)


def started(history):
    first = history.events[0]
    assert first.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    return first.workflow_execution_started_event_attributes


def run(scenario, timeout=60):
    return asyncio.run(asyncio.wait_for(scenario(), timeout))


# MARK: - Workflow retries


@workflow.defn
class FailsTwiceWorkflow:
    @workflow.run
    async def run(self) -> dict:
        info = workflow.info()
        if info.attempt < 3:
            raise ApplicationError(f"attempt {info.attempt} fails")
        return {
            "attempt": info.attempt,
            "continued": info.continued_run_id,
            "first": info.first_execution_run_id,
            "owner": workflow.memo_value("owner", default=None),
            "maximum_attempts": info.retry_policy.maximum_attempts if info.retry_policy else None,
            "execution_timeout": info.execution_timeout.total_seconds() if info.execution_timeout else None,
        }


def test_a_workflow_retry_policy_runs_three_linked_attempts(server):
    """Temporal: a failed run with retries left closes with retry_state IN_PROGRESS and the next
    run's id; the next run starts with attempt + 1, initiator RETRY, the failure as
    continued_failure, the backoff as first_workflow_task_backoff, and the chain's first run id,
    memo, retry policy and execution timeout (and its expiration time)."""

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"retries-{uuid.uuid4()}"
        wid = f"fails-twice-{uuid.uuid4()}"
        async with worker(client, queue, [FailsTwiceWorkflow]):
            handle = await client.start_workflow(
                FailsTwiceWorkflow.run, id=wid, task_queue=queue, memo={"owner": "tests"},
                execution_timeout=timedelta(seconds=50),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=1.0,
                                         maximum_attempts=5),
            )
            # The SDK follows the chain through new_execution_run_id.
            result = await handle.result()
            run1 = handle.first_execution_run_id

            h1 = await history_of(client, wid, run1)
            failed = h1.events[-1]
            assert failed.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
            assert failed.workflow_execution_failed_event_attributes.retry_state == RetryState.RETRY_STATE_IN_PROGRESS
            assert failed.workflow_execution_failed_event_attributes.failure.message == "attempt 1 fails"
            run2 = failed.workflow_execution_failed_event_attributes.new_execution_run_id
            assert run2 and run2 != run1

            h2 = await history_of(client, wid, run2)
            failed2 = h2.events[-1].workflow_execution_failed_event_attributes
            run3 = failed2.new_execution_run_id
            assert run3 and run3 not in (run1, run2)
            h3 = await history_of(client, wid, run3)
            assert h3.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED

            s1, s2, s3 = started(h1), started(h2), started(h3)
            assert (s1.attempt, s2.attempt, s3.attempt) == (1, 2, 3)
            assert s1.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_UNSPECIFIED
            assert s2.initiator == s3.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_RETRY
            assert (s2.continued_execution_run_id, s3.continued_execution_run_id) == (run1, run2)
            assert s1.first_execution_run_id == s2.first_execution_run_id == s3.first_execution_run_id == run1
            assert (s1.original_execution_run_id, s2.original_execution_run_id, s3.original_execution_run_id) == (
                run1, run2, run3)
            assert s2.continued_failure.message == "attempt 1 fails"
            assert s3.continued_failure.message == "attempt 2 fails"
            assert s2.first_workflow_task_backoff.ToTimedelta() == timedelta(milliseconds=200)
            assert s1.first_workflow_task_backoff.ToTimedelta() == timedelta(0)
            for s in (s1, s2, s3):
                assert s.retry_policy.maximum_attempts == 5
                assert s.retry_policy.initial_interval.ToTimedelta() == timedelta(milliseconds=200)
                assert s.workflow_execution_timeout.ToTimedelta() == timedelta(seconds=50)
                assert s.workflow_execution_expiration_time == s1.workflow_execution_expiration_time
                assert set(s.memo.fields) == {"owner"}
            assert s1.workflow_execution_expiration_time.seconds > 0

            assert result == {"attempt": 3, "continued": run2, "first": run1, "owner": "tests",
                              "maximum_attempts": 5, "execution_timeout": 50.0}

            described = await client.get_workflow_handle(wid).describe()
            assert described.run_id == run3
            raw = described.raw_description
            assert raw.workflow_execution_info.first_run_id == run1
            assert raw.execution_config.workflow_execution_timeout.ToTimedelta() == timedelta(seconds=50)
            # Temporal's run timeout defaults to the execution timeout.
            assert raw.execution_config.workflow_run_timeout.ToTimedelta() == timedelta(seconds=50)
            assert await described.memo() == {"owner": "tests"}
            return [h1, h2, h3]

    for history in run(scenario):
        asyncio.run(replay(history, [FailsTwiceWorkflow]))


# MARK: - Cron


@workflow.defn
class CronWorkflow:
    @workflow.run
    async def run(self) -> int:
        last = workflow.get_last_completion_result(int)
        return (last or 0) + 1


def test_a_cron_workflow_fires_again_with_the_last_result(server):
    """Temporal: a cron run's first workflow task waits for the schedule's next time
    (first_workflow_task_backoff); each completed run links to the next (new_execution_run_id),
    which starts with initiator CRON_SCHEDULE and the last completion result."""

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"cron-{uuid.uuid4()}"
        wid = f"cron-{uuid.uuid4()}"
        async with worker(client, queue, [CronWorkflow]):
            handle = await client.start_workflow(CronWorkflow.run, id=wid, task_queue=queue, cron_schedule="@every 2s")
            run1 = handle.first_execution_run_id
            described1 = await client.get_workflow_handle(wid, run_id=run1).describe()
            assert described1.execution_time > described1.start_time
            assert described1.execution_time - described1.start_time <= timedelta(seconds=2)

            assert await client.get_workflow_handle(wid, run_id=run1).result(follow_runs=False) == 1
            h1 = await history_of(client, wid, run1)
            s1 = started(h1)
            assert s1.cron_schedule == "@every 2s"
            assert timedelta(0) < s1.first_workflow_task_backoff.ToTimedelta() <= timedelta(seconds=2)
            assert s1.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
            completed = h1.events[-1]
            assert completed.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
            run2 = completed.workflow_execution_completed_event_attributes.new_execution_run_id
            assert run2 and run2 != run1

            assert await client.get_workflow_handle(wid, run_id=run2).result(follow_runs=False) == 2
            h2 = await history_of(client, wid, run2)
            s2 = started(h2)
            assert s2.cron_schedule == "@every 2s"
            assert s2.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
            assert s2.continued_execution_run_id == run1
            assert s2.first_execution_run_id == run1
            assert s2.last_completion_result.payloads[0].data == b"1"
            assert s2.first_workflow_task_backoff.ToTimedelta() > timedelta(0)

            await client.get_workflow_handle(wid).terminate("enough")
            return [h1, h2]

    for history in run(scenario):
        asyncio.run(replay(history, [CronWorkflow]))


def test_a_bad_cron_schedule_is_an_invalid_argument(server):
    async def scenario():
        client = await Client.connect(server.address)
        errors = []
        for options in ({"cron_schedule": "every tuesday"},
                        {"cron_schedule": "@every 2s", "start_delay": timedelta(seconds=1)}):
            with pytest.raises(RPCError) as raised:
                await client.start_workflow(CronWorkflow.run, id=f"bad-cron-{uuid.uuid4()}", task_queue="nowhere",
                                            **options)
            errors.append(raised.value)
        return errors

    for error in run(scenario):
        assert error.status == RPCStatusCode.INVALID_ARGUMENT


# MARK: - Continue-as-new carrying memo and search attributes


@workflow.defn
class CarryWorkflow:
    @workflow.run
    async def run(self, round: int) -> dict:
        if round == 0:
            workflow.continue_as_new(
                1, memo={"note": "carried"},
                search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "second")]))
        info = workflow.info()
        return {"note": workflow.memo_value("note", default=None), "keyword": info.typed_search_attributes.get(KEYWORD),
                "continued": info.continued_run_id}


def test_continue_as_new_carries_memo_and_search_attributes(server):
    """Temporal: WorkflowExecutionContinuedAsNew records the command's memo and search
    attributes, and the new run starts with them (describe shows them)."""

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"carry-{uuid.uuid4()}"
        wid = f"carry-{uuid.uuid4()}"
        async with worker(client, queue, [CarryWorkflow]):
            handle = await client.start_workflow(
                CarryWorkflow.run, 0, id=wid, task_queue=queue, memo={"note": "first"},
                search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "first")]))
            run1 = handle.first_execution_run_id
            result = await handle.result()

            h1 = await history_of(client, wid, run1)
            assert started(h1).memo.fields["note"].data == b'"first"'
            closing = h1.events[-1]
            assert closing.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            a = closing.workflow_execution_continued_as_new_event_attributes
            assert a.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
            assert a.memo.fields["note"].data == b'"carried"'
            assert a.search_attributes.indexed_fields["CustomKeywordField"].metadata["type"] == b"Keyword"
            run2 = a.new_execution_run_id
            assert result == {"note": "carried", "keyword": "second", "continued": run1}

            h2 = await history_of(client, wid, run2)
            s2 = started(h2)
            assert s2.continued_execution_run_id == run1
            assert s2.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
            assert s2.search_attributes.indexed_fields["CustomKeywordField"].data == b'"second"'

            described = await client.get_workflow_handle(wid).describe()
            assert described.run_id == run2
            assert await described.memo() == {"note": "carried"}
            assert described.typed_search_attributes.get(KEYWORD) == "second"
            assert described.raw_description.workflow_execution_info.first_run_id == run1
            old = await client.get_workflow_handle(wid, run_id=run1).describe()
            assert await old.memo() == {"note": "first"}
            assert old.typed_search_attributes.get(KEYWORD) == "first"
            return [h1, h2]

    for history in run(scenario):
        asyncio.run(replay(history, [CarryWorkflow]))


# MARK: - Upserts from workflow code


@workflow.defn
class UpsertWorkflow:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        workflow.upsert_search_attributes([KEYWORD.value_set("upserted")])
        workflow.upsert_memo({"stage": "upserted"})
        return "done"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


def test_upserts_from_workflow_code_show_in_history_and_describe(server):
    """Temporal: UpsertWorkflowSearchAttributes and WorkflowPropertiesModified events name the
    workflow task that sent them and hold what was sent; describe shows the merged values. The
    run is started by signal-with-start, which takes memo and search attributes as start does."""

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"upsert-{uuid.uuid4()}"
        wid = f"upsert-{uuid.uuid4()}"
        async with worker(client, queue, [UpsertWorkflow]):
            handle = await client.start_workflow(
                UpsertWorkflow.run, id=wid, task_queue=queue, start_signal="proceed",
                memo={"stage": "initial", "owner": "tests"},
                search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "initial")]))
            assert await handle.result() == "done"

            history = await handle.fetch_history()
            s = started(history)
            assert s.memo.fields["stage"].data == b'"initial"'
            assert s.search_attributes.indexed_fields["CustomKeywordField"].data == b'"initial"'
            by_type = {e.event_type: e for e in history.events}
            upsert = by_type[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
            modified = by_type[EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED]
            completed_task = upsert.upsert_workflow_search_attributes_event_attributes.workflow_task_completed_event_id
            assert history.events[completed_task - 1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            assert upsert.event_id == completed_task + 1
            sent = upsert.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            assert sent["CustomKeywordField"].data == b'"upserted"'
            assert sent["CustomKeywordField"].metadata["type"] == b"Keyword"
            m = modified.workflow_properties_modified_event_attributes
            assert m.workflow_task_completed_event_id == completed_task
            assert set(m.upserted_memo.fields) == {"stage"}

            described = await handle.describe()
            assert await described.memo() == {"stage": "upserted", "owner": "tests"}
            assert described.typed_search_attributes.get(KEYWORD) == "upserted"
            return history

    asyncio.run(replay(run(scenario), [UpsertWorkflow]))


# MARK: - Start delay


@workflow.defn
class DelayedWorkflow:
    @workflow.run
    async def run(self) -> str:
        return "late"


def test_a_start_delay_shows_as_the_first_task_backoff_and_execution_time(server):
    """Temporal: workflow_start_delay becomes first_workflow_task_backoff, and describe's
    execution_time is the start time plus it."""

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"delay-{uuid.uuid4()}"
        wid = f"delay-{uuid.uuid4()}"
        handle = await client.start_workflow(DelayedWorkflow.run, id=wid, task_queue=queue,
                                             start_delay=timedelta(seconds=1))
        described = await handle.describe()
        assert described.execution_time - described.start_time == timedelta(seconds=1)
        assert described.raw_description.execution_config.workflow_execution_timeout.ToTimedelta() == timedelta(0)
        async with worker(client, queue, [DelayedWorkflow]):
            assert await handle.result() == "late"
        history = await handle.fetch_history()
        assert started(history).first_workflow_task_backoff.ToTimedelta() == timedelta(seconds=1)
        listed = [w async for w in client.list_workflows(f"WorkflowId = '{wid}'")]
        assert len(listed) == 1
        assert listed[0].execution_time - listed[0].start_time == timedelta(seconds=1)
        return history

    asyncio.run(replay(run(scenario), [DelayedWorkflow]))


# MARK: - Execution timeout across continue-as-new


@workflow.defn
class ForeverWorkflow:
    @workflow.run
    async def run(self, round: int) -> None:
        await workflow.sleep(timedelta(milliseconds=500))
        workflow.continue_as_new(round + 1)


def test_the_execution_timeout_ends_a_chain_of_continued_runs(server):
    """Temporal: the execution timeout counts from the chain's first start, every run carries the
    same expiration time, and the run open when it passes times out with retry_state TIMEOUT
    (the SDK's result() raises a workflow timeout)."""

    async def scenario():
        client = await Client.connect(server.address)
        queue = f"forever-{uuid.uuid4()}"
        wid = f"forever-{uuid.uuid4()}"
        async with worker(client, queue, [ForeverWorkflow]):
            handle = await client.start_workflow(ForeverWorkflow.run, 0, id=wid, task_queue=queue,
                                                 execution_timeout=timedelta(seconds=3))
            with pytest.raises(WorkflowFailureError) as raised:
                await handle.result()
            assert isinstance(raised.value.cause, TimeoutError)

            histories, run_id = [], handle.first_execution_run_id
            while run_id:
                history = await history_of(client, wid, run_id)
                histories.append(history)
                last = history.events[-1]
                run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                          if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW else "")
            assert len(histories) >= 2
            timed_out = histories[-1].events[-1]
            assert timed_out.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT
            assert timed_out.workflow_execution_timed_out_event_attributes.retry_state == RetryState.RETRY_STATE_TIMEOUT
            expirations = {started(h).workflow_execution_expiration_time.ToNanoseconds() for h in histories}
            assert len(expirations) == 1
            for h in histories:
                assert started(h).workflow_execution_timeout.ToTimedelta() == timedelta(seconds=3)
            described = await client.get_workflow_handle(wid).describe()
            assert described.raw_description.execution_config.workflow_execution_timeout.ToTimedelta() == timedelta(seconds=3)
            return histories

    for history in run(scenario):
        asyncio.run(replay(history, [ForeverWorkflow]))
