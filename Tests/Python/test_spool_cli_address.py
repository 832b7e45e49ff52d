"""`spool workflow …` and `spool task-queue …` with `--address` (issue 22, point 5): while
`spool serve` holds the data directory, the same commands go through Temporal's API. What they
do is checked through Temporal's Python SDK (and, for durable settings, through `--data` after
the server stopped), not through Spool's own output alone."""

import asyncio
import json
import subprocess

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from conftest import Server, spool_binary


def spool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(spool_binary()), *args], capture_output=True, text=True, timeout=60)


def run(coroutine, timeout=30):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def test_workflow_commands_through_a_running_server(server):
    address = server.address
    started = spool("workflow", "start", "--address", address, "--id", "cli-1", "--type", "Greeter",
                    "--task-queue", "cli-q", "--input", "hello", "--json")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["runId"]

    # The data directory is the server's: --data is refused with a hint to use --address.
    locked = spool("workflow", "list", "--data", str(server.data))
    assert locked.returncode == 2
    assert "--address" in locked.stderr

    signaled = spool("workflow", "signal", "--address", address, "--id", "cli-1", "--name", "poke", "--input", "x")
    assert signaled.returncode == 0, signaled.stderr

    async def check_history():
        client = await Client.connect(address)
        handle = client.get_workflow_handle("cli-1")
        description = await handle.describe()
        assert description.run_id == run_id
        assert description.workflow_type == "Greeter"
        assert description.task_queue == "cli-q"
        assert description.status == WorkflowExecutionStatus.RUNNING
        events = [event async for event in handle.fetch_history_events()]
        started_event = events[0].workflow_execution_started_event_attributes
        assert started_event.input.payloads[0].data == b"hello"
        assert started_event.input.payloads[0].metadata["encoding"] == b"binary/plain"
        signals = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        assert len(signals) == 1
        assert signals[0].workflow_execution_signaled_event_attributes.signal_name == "poke"
        assert signals[0].workflow_execution_signaled_event_attributes.input.payloads[0].data == b"x"
        return len(events)

    event_count = run(check_history())

    described = spool("workflow", "describe", "--address", address, "--id", "cli-1")
    assert described.returncode == 0, described.stderr
    assert f"run id         {run_id}" in described.stdout
    assert f"history        {event_count} events" in described.stdout

    shown = spool("workflow", "show", "--address", address, "--id", "cli-1", "--json")
    assert shown.returncode == 0, shown.stderr
    types = [json.loads(line)["eventType"] for line in shown.stdout.splitlines()]
    assert types[0] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" in types
    assert len(types) == event_count

    listed = spool("workflow", "list", "--address", address, "--query", "WorkflowType = 'Greeter'", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["execution"]["runId"] for line in listed.stdout.splitlines()] == [run_id]

    counted = spool("workflow", "count", "--address", address, "--query", "GROUP BY ExecutionStatus", "--json")
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout) == {"count": 1, "groups": [{"values": ["Running"], "count": 1}]}

    terminated = spool("workflow", "terminate", "--address", address, "--id", "cli-1", "--reason", "done here")
    assert terminated.returncode == 0, terminated.stderr

    async def check_terminated():
        client = await Client.connect(address)
        description = await client.get_workflow_handle("cli-1").describe()
        assert description.status == WorkflowExecutionStatus.TERMINATED
        events = [e async for e in client.get_workflow_handle("cli-1").fetch_history_events()]
        assert events[-1].workflow_execution_terminated_event_attributes.reason == "done here"

    run(check_terminated())


def test_rejections_and_usage_errors_keep_the_local_exit_statuses(server):
    address = server.address
    assert spool("workflow", "start", "--address", address, "--id", "dup", "--type", "T", "--task-queue", "q").returncode == 0
    again = spool("workflow", "start", "--address", address, "--id", "dup", "--type", "T", "--task-queue", "q",
                  "--id-reuse-policy", "reject-duplicate")
    assert again.returncode == 1
    assert "already" in again.stderr.lower()

    missing = spool("workflow", "describe", "--address", address, "--id", "no-such-workflow")
    assert missing.returncode == 1
    assert "no-such-workflow" in missing.stderr

    bad_query = spool("workflow", "list", "--address", address, "--query", "NoSuchAttribute = 1")
    assert bad_query.returncode == 64
    assert "NoSuchAttribute" in bad_query.stderr

    both = spool("workflow", "list", "--address", address, "--data", str(server.data))
    assert both.returncode == 64

    bad_address = spool("workflow", "list", "--address", "127.0.0.1")
    assert bad_address.returncode == 64
    assert "HOST:PORT" in bad_address.stderr

    pause = spool("task-queue", "pause", "--address", address, "--task-queue", "q")
    assert pause.returncode == 64
    assert "not in Temporal's API" in pause.stderr


def test_an_unreachable_server_exits_2(tmp_path):
    # A port nobody listens on: take one from a server, then stop it.
    gone = Server(tmp_path / "d")
    address = gone.address
    gone.stop()
    result = spool("workflow", "list", "--address", address)
    assert result.returncode == 2
    assert f"cannot reach a server at {address}" in result.stderr


def test_api_keys_are_sent_from_the_servers_key_file(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# the operator's keys\nfirst-key\nsecond-key\n")
    server = Server(tmp_path / "d", ["--api-key-file", str(keys)])
    try:
        without = spool("workflow", "list", "--address", server.address)
        assert without.returncode == 2
        assert "unauthenticated" in without.stderr.lower()
        with_key = spool("workflow", "list", "--address", server.address, "--api-key-file", str(keys))
        assert with_key.returncode == 0, with_key.stderr
    finally:
        server.stop()


def test_a_task_queue_rate_set_through_the_server_is_durable(tmp_path):
    server = Server(tmp_path / "d")
    try:
        configured = spool("task-queue", "config", "--address", server.address, "--task-queue", "rated",
                           "--rate", "12.5", "--key-rate", "3", "--reason", "protect the database")
        assert configured.returncode == 0, configured.stderr
        assert "12.5/s (protect the database; set by spool-cli" in configured.stdout
        assert "3.0/s per fairness key × its weight (protect the database" in configured.stdout
        described = spool("task-queue", "describe", "--address", server.address, "--task-queue", "rated", "--json")
        assert described.returncode == 0, described.stderr
        assert json.loads(described.stdout)["config"]["queueRateLimit"]["rateLimit"]["requestsPerSecond"] == 12.5
    finally:
        server.stop()
    # The server wrote it to the data directory: the local command reads it back.
    local = spool("task-queue", "config", "--data", str(tmp_path / "d"), "--task-queue", "rated", "--json")
    assert local.returncode == 0, local.stderr
    limit = json.loads(local.stdout)["queueRateLimit"]
    assert limit["requestsPerSecond"] == 12.5
    assert limit["reason"] == "protect the database"
    assert json.loads(local.stdout)["fairnessKeyRateLimit"]["requestsPerSecond"] == 3
