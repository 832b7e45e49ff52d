"""Task queues through `spool serve` with the Python SDK and the official CLI: priorities and
fairness keys recorded in history, the worker's queue rate limit reaching matching,
DescribeTaskQueue (`temporal task-queue describe`), UpdateTaskQueueConfig (`temporal
task-queue config set/get`), and a local activity that outlives the workflow task timeout
(the SDK completes the task with force_create_new_workflow_task as a heartbeat)."""

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.api.enums.v1 import DescribeTaskQueueMode, EventType, RateLimitSource, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, StartWorkflowExecutionRequest, UpdateTaskQueueConfigRequest
from temporalio.client import Client
from temporalio.common import Priority
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

TEMPORAL = Path(sys.executable).parent / "temporal"


def run(scenario, timeout=60):
    return asyncio.run(asyncio.wait_for(scenario(), timeout))


def cli(server, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(TEMPORAL), *args, "--address", server.address], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


@activity.defn(name="echo")
async def echo(value: str) -> str:
    return value


@workflow.defn(name="Prioritized")
class Prioritized:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            echo, "done", start_to_close_timeout=timedelta(seconds=10),
            priority=Priority(priority_key=2, fairness_key="tenant-b", fairness_weight=0.5))


def events_of(history, event_type):
    return [e for e in history.events if e.event_type == event_type]


def test_priorities_are_recorded_in_history_and_replay(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"q-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[Prioritized], activities=[echo],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            handle = await client.start_workflow(
                Prioritized.run, id=f"wf-{uuid.uuid4()}", task_queue=queue,
                priority=Priority(priority_key=1, fairness_key="tenant-a", fairness_weight=2.0))
            assert await handle.result() == "done"
        history = await handle.fetch_history()
        # Temporal records the start request's priority in WorkflowExecutionStarted and the
        # command's in ActivityTaskScheduled.
        started = history.events[0].workflow_execution_started_event_attributes
        assert (started.priority.priority_key, started.priority.fairness_key, started.priority.fairness_weight) == (1, "tenant-a", 2.0)
        [scheduled] = events_of(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        p = scheduled.activity_task_scheduled_event_attributes.priority
        assert (p.priority_key, p.fairness_key, p.fairness_weight) == (2, "tenant-b", 0.5)
        await Replayer(workflows=[Prioritized], workflow_runner=UnsandboxedWorkflowRunner()).replay_workflow(history)

    run(scenario)


def test_a_bad_priority_is_invalid_argument_naming_the_field(server):
    async def scenario():
        client = await Client.connect(server.address)
        request = StartWorkflowExecutionRequest(
            namespace="default", workflow_id=f"wf-{uuid.uuid4()}", request_id=str(uuid.uuid4()),
            task_queue=TaskQueue(name="q"))
        request.workflow_type.name = "Prioritized"
        request.priority.priority_key = 9
        try:
            await client.workflow_service.start_workflow_execution(request)
        except RPCError as error:
            assert error.status == RPCStatusCode.INVALID_ARGUMENT
            assert "priority.priorityKey" in error.message
        else:
            raise AssertionError("a priority key of 9 was accepted")

    run(scenario)


def test_the_workers_queue_rate_reaches_matching_and_describe_shows_it(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"q-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[Prioritized], activities=[echo],
                          workflow_runner=UnsandboxedWorkflowRunner(), identity="rate-worker",
                          max_task_queue_activities_per_second=7.5):
            handle = await client.start_workflow(Prioritized.run, id=f"wf-{uuid.uuid4()}", task_queue=queue)
            assert await handle.result() == "done"
            described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace="default", task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, report_config=True, report_stats=True))
        # The rate the worker sent in task_queue_metadata is the queue's effective limit.
        assert described.effective_rate_limit.requests_per_second == 7.5
        assert described.effective_rate_limit.rate_limit_source == RateLimitSource.RATE_LIMIT_SOURCE_WORKER
        assert [p.rate_per_second for p in described.pollers if p.identity == "rate-worker"] == [7.5]
        assert described.stats.approximate_backlog_count == 0
        assert described.stats.tasks_dispatch_rate > 0

    run(scenario)


@workflow.defn(name="Waiting")
class Waiting:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


def test_the_cli_describes_a_task_queue_with_pollers_and_backlog(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"q-{uuid.uuid4()}"
        # A workflow task waits: nobody polls the queue yet.
        await client.start_workflow(Waiting.run, id=f"wf-{uuid.uuid4()}", task_queue=queue)
        backlog = json.loads(cli(server, "task-queue", "describe", "--task-queue", queue, "-o", "json").stdout)
        stats = {row["taskQueueType"]: row for row in backlog["stats"]}
        assert stats["workflow"]["approximateBacklogCount"] == 1
        assert stats["activity"]["approximateBacklogCount"] == 0
        assert backlog["pollers"] in (None, [])
        async with Worker(client, task_queue=queue, workflows=[Waiting], workflow_runner=UnsandboxedWorkflowRunner(),
                          identity="cli-worker"):
            # Once the worker took the task, it polls again; both queues list it.
            for _ in range(100):
                described = json.loads(cli(server, "task-queue", "describe", "--task-queue", queue, "-o", "json").stdout)
                stats = {row["taskQueueType"]: row for row in described["stats"]}
                if stats["workflow"]["approximateBacklogCount"] == 0 and described["pollers"]:
                    break
                await asyncio.sleep(0.1)
            assert stats["workflow"]["approximateBacklogCount"] == 0
            assert {(p["identity"], p["taskQueueType"]) for p in described["pollers"]} >= {("cli-worker", "workflow")}
            text = cli(server, "task-queue", "describe", "--task-queue", queue).stdout
            assert "Task Queue Statistics:" in text and "Pollers:" in text and "cli-worker" in text
            legacy = cli(server, "task-queue", "describe", "--task-queue", queue, "--legacy-mode").stdout
            assert "cli-worker" in legacy

    run(scenario)


def test_the_cli_sets_and_gets_the_queue_rate_limit(server):
    queue = f"q-{uuid.uuid4()}"
    cli(server, "task-queue", "config", "set", "--task-queue", queue, "--task-queue-type", "activity",
        "--queue-rps-limit", "5", "--queue-rps-limit-reason", "noisy tenant")
    config = json.loads(cli(server, "task-queue", "config", "get", "--task-queue", queue,
                            "--task-queue-type", "activity", "-o", "json").stdout)
    assert config["queueRateLimit"]["rateLimit"]["requestsPerSecond"] == 5
    assert config["queueRateLimit"]["metadata"]["reason"] == "noisy tenant"
    # `describe --report-config` (legacy mode, as the CLI requires for it) prints the same.
    text = cli(server, "task-queue", "describe", "--task-queue", queue, "--legacy-mode",
               "--task-queue-type-legacy", "activity", "--report-config").stdout
    assert "Task Queue Configuration:" in text and "5.00 rps" in text and "noisy tenant" in text

    async def described():
        client = await Client.connect(server.address)
        return await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, report_config=True))

    answer = run(described)
    assert answer.effective_rate_limit.requests_per_second == 5
    assert answer.effective_rate_limit.rate_limit_source == RateLimitSource.RATE_LIMIT_SOURCE_API
    # "default" removes the limit again.
    cli(server, "task-queue", "config", "set", "--task-queue", queue, "--task-queue-type", "activity",
        "--queue-rps-limit", "default")
    assert not run(described).config.HasField("queue_rate_limit")


def test_bad_task_queue_config_updates_are_invalid_argument(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"q-{uuid.uuid4()}"
        cases = [
            # Temporal refuses a rate limit on a workflow task queue.
            (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, 5.0, "workflow task queues"),
            (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, -1.0, "queueRateLimit"),
            (TaskQueueType.TASK_QUEUE_TYPE_UNSPECIFIED, 5.0, "task_queue_type"),
        ]
        for queue_type, rate, named in cases:
            request = UpdateTaskQueueConfigRequest(namespace="default", task_queue=queue, task_queue_type=queue_type)
            request.update_queue_rate_limit.rate_limit.requests_per_second = rate
            try:
                await client.workflow_service.update_task_queue_config(request)
            except RPCError as error:
                assert error.status == RPCStatusCode.INVALID_ARGUMENT, (queue_type, rate, error)
                assert named in error.message, (queue_type, rate, error.message)
            else:
                raise AssertionError(f"{queue_type} at {rate}/s was accepted")
        # Nothing was set.
        described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, report_config=True))
        assert not described.config.HasField("queue_rate_limit")
        assert described.effective_rate_limit.rate_limit_source == RateLimitSource.RATE_LIMIT_SOURCE_SYSTEM

    run(scenario)


@activity.defn(name="slow")
async def slow() -> str:
    await asyncio.sleep(3)
    return "slow done"


@workflow.defn(name="LongLocal")
class LongLocal:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_local_activity(slow, start_to_close_timeout=timedelta(seconds=20))


def test_a_local_activity_running_past_the_workflow_task_timeout_completes(server):
    async def scenario():
        client = await Client.connect(server.address)
        queue = f"q-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[LongLocal], activities=[slow],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            handle = await client.start_workflow(LongLocal.run, id=f"wf-{uuid.uuid4()}", task_queue=queue,
                                                 task_timeout=timedelta(seconds=1))
            assert await handle.result() == "slow done"
        history = await handle.fetch_history()
        # The SDK kept the task alive with heartbeats (completions forcing a new task), so no
        # workflow task timed out and more than one completed.
        assert not events_of(history, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)
        assert len(events_of(history, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)) > 1
        assert len(events_of(history, EventType.EVENT_TYPE_MARKER_RECORDED)) == 1
        await Replayer(workflows=[LongLocal], workflow_runner=UnsandboxedWorkflowRunner()).replay_workflow(history)

    run(scenario)
