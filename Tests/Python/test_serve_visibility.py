"""List and Count through `spool serve`: Temporal's Python SDK (`list_workflows`,
`count_workflows`) and the official CLI (`temporal workflow list|count --query`) select runs with
the visibility query language; a malformed query is an InvalidArgument the SDK raises, naming the
problem."""

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

TEMPORAL = Path(sys.executable).parent / "temporal"


async def start_runs(client: Client, prefix: str) -> None:
    """Three `invoice` runs and one `refund` run on a queue no worker polls; invoice 0 terminated."""
    for index in range(3):
        await client.start_workflow("invoice", id=f"{prefix}-inv-{index}", task_queue=f"{prefix}-q")
    await client.start_workflow("refund", id=f"{prefix}-ref-0", task_queue=f"{prefix}-q")
    await client.get_workflow_handle(f"{prefix}-inv-0").terminate("test")


def test_the_sdk_lists_and_counts_with_a_query(server):
    prefix = f"v{uuid.uuid4().hex[:8]}"

    async def scenario():
        client = await Client.connect(server.address)
        await start_runs(client, prefix)
        running = [w.id async for w in client.list_workflows(
            f"WorkflowType = 'invoice' AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH '{prefix}'")]
        # Newest start first.
        assert running == [f"{prefix}-inv-2", f"{prefix}-inv-1"]
        # Paging: one run per page still returns every run once.
        everything = [w.id async for w in client.list_workflows(f"WorkflowId STARTS_WITH '{prefix}'", page_size=1)]
        assert everything == [f"{prefix}-ref-0", f"{prefix}-inv-2", f"{prefix}-inv-1", f"{prefix}-inv-0"]
        terminated = [w async for w in client.list_workflows(f"ExecutionStatus = 'Terminated' AND WorkflowId STARTS_WITH '{prefix}'")]
        assert [w.id for w in terminated] == [f"{prefix}-inv-0"]
        assert terminated[0].workflow_type == "invoice" and terminated[0].close_time is not None

        count = await client.count_workflows(f"WorkflowId STARTS_WITH '{prefix}'")
        assert count.count == 4
        grouped = await client.count_workflows(f"WorkflowId STARTS_WITH '{prefix}' GROUP BY ExecutionStatus")
        assert grouped.count == 4
        assert [(g.group_values, g.count) for g in grouped.groups] == [(["Running"], 3), (["Terminated"], 1)]

        with pytest.raises(RPCError) as bad:
            await client.count_workflows("WorkflowType = invoice")
        assert bad.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert "did you forget to quote 'invoice'?" in bad.value.message
        with pytest.raises(RPCError) as unknown:
            [w async for w in client.list_workflows("CustomerId = 'c-42'")]
        assert unknown.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert "unknown search attribute CustomerId" in unknown.value.message

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_the_temporal_cli_lists_and_counts_with_a_query(server):
    prefix = f"c{uuid.uuid4().hex[:8]}"

    async def setup():
        await start_runs(await Client.connect(server.address), prefix)

    asyncio.run(asyncio.wait_for(setup(), 60))

    def cli(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(TEMPORAL), *args, "--address", server.address], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    listed = cli("workflow", "list", "--query", f"WorkflowType = 'invoice' AND WorkflowId STARTS_WITH '{prefix}'", "-o", "json")
    runs = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()] if not listed.stdout.lstrip().startswith("[") \
        else json.loads(listed.stdout)
    assert [r["execution"]["workflowId"] for r in runs] == [f"{prefix}-inv-2", f"{prefix}-inv-1", f"{prefix}-inv-0"]
    assert runs[2]["status"] == "WORKFLOW_EXECUTION_STATUS_TERMINATED"

    counted = json.loads(cli("workflow", "count", "--query", f"WorkflowId STARTS_WITH '{prefix}'", "-o", "json").stdout)
    assert int(counted["count"]) == 4


def test_reverse_history_pages_newest_first_and_reset_sticky_answers(server):
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import (GetWorkflowExecutionHistoryReverseRequest,
                                                   ResetStickyTaskQueueRequest)

    workflow_id = f"rev-{uuid.uuid4().hex[:8]}"

    async def scenario():
        client = await Client.connect(server.address)
        handle = await client.start_workflow("invoice", id=workflow_id, task_queue="rev-q")
        # Started (1), WorkflowTaskScheduled (2), then Terminated (3).
        await handle.terminate("test")
        service = client.workflow_service
        execution = WorkflowExecution(workflow_id=workflow_id)
        first = await service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(namespace="default", execution=execution, maximum_page_size=2))
        assert [(e.event_id, e.event_type) for e in first.history.events] == [(3, 27), (2, 5)]
        assert first.next_page_token
        second = await service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(namespace="default", execution=execution, maximum_page_size=2,
                                                      next_page_token=first.next_page_token))
        assert [(e.event_id, e.event_type) for e in second.history.events] == [(1, 1)]
        assert not second.next_page_token

        # A running run without a sticky queue: reset succeeds and changes nothing; an unknown id is NOT_FOUND.
        running = await client.start_workflow("invoice", id=f"{workflow_id}-open", task_queue="rev-q")
        await service.reset_sticky_task_queue(ResetStickyTaskQueueRequest(
            namespace="default", execution=WorkflowExecution(workflow_id=running.id)))
        with pytest.raises(RPCError) as missing:
            await service.reset_sticky_task_queue(ResetStickyTaskQueueRequest(
                namespace="default", execution=WorkflowExecution(workflow_id="no-such-workflow")))
        assert missing.value.status == RPCStatusCode.NOT_FOUND

    asyncio.run(asyncio.wait_for(scenario(), 60))
