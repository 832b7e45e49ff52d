"""The web console (`spool serve --ui`) in a real browser: Debian's headless Chromium driven
through its DevTools protocol (browser.py). A store with running, completed, failed and retrying
workflows is made with Temporal's Python SDK; each page is opened and checked against the SDK's
answers (describe, list, count) and `spool task-queue describe --address`; the signal, cancel,
terminate, pause, resume and rate forms are clicked and their effect checked; bad input gets a
clear page. Screenshots go to $SPOOL_CONSOLE_SCREENSHOTS (Docs/console for the docs), else to a
temporary directory."""

import asyncio
import json
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from browser import Browser, chromium_path
from conftest import ROOT, spool_binary

QUEUE = "console-demo"
MARKUP_ID = '<b id="evil">x</b><script>alert(1)</script>'
MARKUP_INPUT = "<img id=\"evil-img\" src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed (Tools/dev test installs it)")


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def charge(order: str) -> str:
    raise ApplicationError(f"card declined for {order}", type="CardDeclined")


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))


@workflow.defn
class RejectedWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        raise ApplicationError("order rejected: out of stock", type="OutOfStock", non_retryable=True)


@workflow.defn
class ChargeWorkflow:
    @workflow.run
    async def run(self, order: str) -> str:
        return await workflow.execute_activity(
            charge, order, start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(hours=1)),
        )


@workflow.defn
class WaitingWorkflow:
    def __init__(self):
        self.pokes = []

    @workflow.signal
    def poke(self, value: str):
        self.pokes.append(value)

    @workflow.run
    async def run(self) -> list:
        await workflow.wait_condition(lambda: len(self.pokes) > 0, timeout=timedelta(hours=1))
        return self.pokes


@workflow.defn
class FairWorkflow:
    """Schedules activities with fairness keys on a queue nobody polls, so they wait in its backlog."""

    @workflow.run
    async def run(self) -> None:
        keys = ["tenant-a", "tenant-a", "tenant-a", "tenant-b", "tenant-b", ""]
        await asyncio.gather(*[
            workflow.execute_activity("fair-charge", index, task_queue="fair-acts", start_to_close_timeout=timedelta(hours=1),
                                      priority=Priority(fairness_key=key or None))
            for index, key in enumerate(keys)
        ])


class ConsoleServer:
    """`spool serve --ui 127.0.0.1:0`, its gRPC address and its console's URL."""

    def __init__(self, data: Path, extra=()):
        self.process = subprocess.Popen(
            [str(spool_binary()), "serve", "--data", str(data), "--listen", "127.0.0.1:0", "--ui", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.address = self.ui = None
        while self.address is None or self.ui is None:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait(timeout=10)
                pytest.fail(f"spool serve exited with {self.process.returncode}: {self.process.stderr.read()}")
            if "listening on " in line:
                self.address = line.split("listening on ", 1)[1].split(",", 1)[0]
            if "web console on " in line:
                self.ui = line.split("web console on ", 1)[1].strip().rstrip("/")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


async def populate(address: str) -> dict:
    client = await Client.connect(address)
    ids = {}
    async with Worker(client, task_queue=QUEUE, workflows=[OrderWorkflow, RejectedWorkflow, ChargeWorkflow, WaitingWorkflow, FairWorkflow],
                      activities=[greet, charge], workflow_runner=UnsandboxedWorkflowRunner()):
        ids["completed"] = "order-completed"
        await client.execute_workflow(OrderWorkflow.run, "Spool", id=ids["completed"], task_queue=QUEUE)
        ids["failed"] = "order-rejected"
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(RejectedWorkflow.run, "Spool", id=ids["failed"], task_queue=QUEUE)
        ids["retrying"] = "charge-retrying"
        retrying = await client.start_workflow(ChargeWorkflow.run, "order-7", id=ids["retrying"], task_queue=QUEUE)
        for name in ("signal", "cancel", "terminate"):
            ids[name] = f"waiting-{name}"
            await client.start_workflow(WaitingWorkflow.run, id=ids[name], task_queue=QUEUE)
        ids["fair"] = "fair-activities"
        await client.start_workflow(FairWorkflow.run, id=ids["fair"], task_queue=QUEUE)
        # Until the first attempt has failed and the second waits out its hour of backoff, and
        # every waiting workflow has completed its first workflow task.
        deadline = time.monotonic() + 30
        while True:
            pending = (await retrying.describe()).raw_description.pending_activities
            waiting = [await client.get_workflow_handle(ids[n]).describe() for n in ("signal", "cancel", "terminate", "fair")]
            if pending and pending[0].attempt >= 2 and all(d.raw_description.workflow_execution_info.history_length >= 4 for d in waiting):
                break
            assert time.monotonic() < deadline, "the store did not settle"
            await asyncio.sleep(0.2)
    # No worker polls this queue: the run stays running with its markup id and input.
    await client.start_workflow("Markup<i>Type</i>", MARKUP_INPUT, id=MARKUP_ID, task_queue="nobody-polls")
    ids["markup"] = MARKUP_ID
    return ids


def sdk(address, coroutine_function):
    async def call():
        client = await Client.connect(address)
        return await coroutine_function(client)
    return asyncio.run(asyncio.wait_for(call(), 60))


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    server = ConsoleServer(tmp_path_factory.mktemp("console") / "spool-data")
    try:
        server.ids = asyncio.run(asyncio.wait_for(populate(server.address), 120))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("SPOOL_CONSOLE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    if not path.is_absolute():
        path = ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def href(browser, selector):
    return browser.evaluate(f"document.querySelector({json.dumps(selector)}).href")


def test_the_workflows_page_shows_the_engines_runs_and_counts(console, browser, shots):
    assert browser.goto(console.ui + "/") == 200
    assert browser.evaluate("location.pathname") == "/namespaces/default/workflows"
    for status in ("Running", "Completed", "Failed"):
        expected = sdk(console.address, lambda c: c.count_workflows(f"ExecutionStatus = '{status}'")).count
        shown = browser.text(f'a[data-status="{status}"] .n')
        assert int(shown) == expected, status
    listed = sdk(console.address, lambda c: _collect(c.list_workflows()))
    rows = browser.evaluate("[...document.querySelectorAll('tr[data-workflow-id]')].map(r => [r.dataset.workflowId, r.dataset.runId])")
    assert sorted(map(tuple, rows)) == sorted((w.id, w.run_id) for w in listed)
    # Times are written in the browser's zone by console.js, with UTC on hover.
    assert browser.evaluate("document.querySelector('time').title.endsWith('UTC')")
    assert not browser.dialogs
    browser.screenshot(shots / "workflows.png")
    browser.screenshot(shots / "workflows-phone.png", width=390, height=844, mobile=True)


async def _collect(iterator):
    return [w async for w in iterator]


def test_the_query_box_filters_and_the_back_button_returns(console, browser):
    browser.goto(console.ui + "/namespaces/default/workflows")
    browser.fill('form.query input[name="query"]', "ExecutionStatus = 'Failed'")
    browser.click('form.query button[type="submit"]')
    assert "query=ExecutionStatus" in browser.evaluate("location.search")
    ids = browser.evaluate("[...document.querySelectorAll('tr[data-workflow-id]')].map(r => r.dataset.workflowId)")
    assert ids == [console.ids["failed"]]
    # The URL is shareable: opened afresh it shows the same rows.
    shared = browser.evaluate("location.href")
    browser.goto(shared)
    assert browser.evaluate("[...document.querySelectorAll('tr[data-workflow-id]')].map(r => r.dataset.workflowId)") == ids
    # Back: Chromium may restore the page from its back-forward cache (no load event), so wait for the address.
    browser.evaluate("history.back()")
    deadline = time.monotonic() + 10
    while browser.evaluate("location.search") != "" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert browser.evaluate("location.search") == ""
    assert browser.count("tr[data-workflow-id]") > 1


def test_a_retrying_workflows_page_shows_its_attempt_failure_and_history(console, browser, shots):
    browser.goto(console.ui + "/namespaces/default/workflows")
    browser.click(f'tr[data-workflow-id="{console.ids["retrying"]}"] td.id a')
    described = sdk(console.address, lambda c: c.get_workflow_handle(console.ids["retrying"]).describe())
    raw = described.raw_description
    assert browser.text("#run-id") == described.run_id
    assert browser.text(".status") == "Running"
    pending = raw.pending_activities[0]
    assert browser.text("#pending-activities td.attempt").split()[0] == str(pending.attempt)
    assert "retrying" in browser.text("#pending-activities")
    assert "card declined for order-7" in browser.text("#pending-activities")
    assert pending.last_failure.message == "card declined for order-7"
    assert browser.count("#history tr.event") == raw.workflow_execution_info.history_length
    assert browser.count("svg.timeline g.bar.activity.retrying") == 1
    assert browser.count("svg.timeline line.retry") == 1
    browser.screenshot(shots / "workflow.png")
    browser.screenshot(shots / "workflow-history.png", scroll_to="section.pending")


def test_completed_and_failed_runs_show_their_result_and_failure(console, browser, shots):
    browser.goto(console.ui + "/namespaces/default/workflows/" + console.ids["completed"])
    assert browser.text(".status") == "Completed"
    results = browser.evaluate("[...document.querySelectorAll('tr.WorkflowExecutionCompleted pre.payload-json')].map(p => p.innerText)")
    assert results == ['"Hello, Spool!"']
    assert browser.count("svg.timeline g.bar.activity.completed") == 1
    browser.screenshot(shots / "workflow-completed.png", scroll_to="svg.timeline")
    browser.goto(console.ui + "/namespaces/default/workflows/" + console.ids["failed"])
    assert browser.text(".status") == "Failed"
    failure = browser.text("tr.WorkflowExecutionFailed")
    assert "OutOfStock, non-retryable" in failure and "order rejected: out of stock" in failure


def confirm(browser):
    assert "Confirm" in browser.text("h1")
    browser.click("#confirm")
    assert browser.count("p.notice") == 1


def events_of(console, workflow_id):
    async def read(client):
        return [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
    return sdk(console.address, read)


def test_signal_cancel_and_terminate_buttons_act_on_the_run(console, browser):
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import WorkflowExecutionStatus

    browser.goto(console.ui + "/namespaces/default/workflows/" + console.ids["signal"])
    browser.fill('#signal-form input[name="name"]', "poke")
    browser.fill('#signal-form input[name="input"]', '"from the console"')
    browser.click("#signal-form button")
    confirm(browser)
    signaled = [e for e in events_of(console, console.ids["signal"]) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    assert len(signaled) == 1
    attributes = signaled[0].workflow_execution_signaled_event_attributes
    assert attributes.signal_name == "poke" and attributes.input.payloads[0].data == b'"from the console"'

    browser.goto(console.ui + "/namespaces/default/workflows/" + console.ids["cancel"])
    browser.fill('#cancel-form input[name="reason"]', "customer asked")
    browser.click("#cancel-form button")
    confirm(browser)
    requested = [e for e in events_of(console, console.ids["cancel"])
                 if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED]
    assert len(requested) == 1 and requested[0].workflow_execution_cancel_requested_event_attributes.cause == "customer asked"

    browser.goto(console.ui + "/namespaces/default/workflows/" + console.ids["terminate"])
    browser.fill('#terminate-form input[name="reason"]', "stuck")
    browser.click("#terminate-form button")
    confirm(browser)
    described = sdk(console.address, lambda c: c.get_workflow_handle(console.ids["terminate"]).describe())
    assert described.status == WorkflowExecutionStatus.TERMINATED
    assert browser.text(".status") == "Terminated"
    assert browser.count("#terminate-form") == 0


def describe_queue(console, kind):
    result = subprocess.run([str(spool_binary()), "task-queue", "describe", "--address", console.address, "--task-queue", QUEUE,
                             "--kind", kind, "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def poll_once(console, queue, seconds):
    """One workflow task poll on `queue` that gives up after `seconds`: the task's token, or None."""
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import PollWorkflowTaskQueueRequest
    from temporalio.service import RPCError

    async def poll(client):
        try:
            response = await client.workflow_service.poll_workflow_task_queue(
                PollWorkflowTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=queue), identity="console-test"),
                timeout=timedelta(seconds=seconds))
        except RPCError:
            return None
        return response.task_token or None
    return sdk(console.address, poll)


def test_task_queue_pages_show_the_queue_and_pause_resume_and_rate_work(console, browser, shots):
    browser.goto(console.ui + "/namespaces/default/task-queues")
    row = f'tr[data-queue="{QUEUE}"][data-kind="activity"]'
    assert browser.count(row) == 1
    # The worker polled within the last 5 minutes (Temporal's poller history), so it is still listed.
    assert int(browser.text(row + " td.pollers")) >= 1
    browser.screenshot(shots / "task-queues.png")

    # A workflow task waits on a queue nobody polls; pausing it from the console holds a poll back.
    queue = "paused-demo"
    sdk(console.address, lambda c: c.start_workflow("Paused", id="paused-1", task_queue=queue))
    browser.goto(console.ui + f"/namespaces/default/task-queues/workflow/{queue}")
    assert browser.text("#paused") == "no"
    assert browser.text("#backlog") == "1"
    browser.fill('#pause-form input[name="reason"]', "deploying")
    browser.click("#pause-form button")
    assert "deploying" in browser.text("#paused")
    assert poll_once(console, queue, 2) is None
    browser.click("#resume-form button")
    assert browser.text("#paused") == "no"
    assert poll_once(console, queue, 10) is not None

    # The backlog per fairness key of a queue whose activities nobody polls.
    browser.goto(console.ui + "/namespaces/default/task-queues/activity/fair-acts")
    assert browser.text('tr[data-priority="3"] td.num:nth-child(2)') == "6"
    assert browser.text('li[data-fairness-key="tenant-a"]').startswith("tenant-a 3 ")
    assert browser.text('li[data-fairness-key="tenant-b"]').startswith("tenant-b 2 ")
    assert "no key: 1" in browser.text('tr[data-priority="3"]')
    browser.screenshot(shots / "task-queue-fairness.png", scroll_to="#backlog-by-priority")

    browser.goto(console.ui + f"/namespaces/default/task-queues/activity/{QUEUE}")
    browser.fill('#rate-form input[name="rate"]', "7.5")
    browser.fill('#rate-form input[name="reason"]', "protect the card API")
    browser.click("#rate-form button")
    assert browser.text("#effective-rate") == "7.50/s"
    assert "protect the card API" in browser.text("#configured-rate")
    described = describe_queue(console, "activity")
    assert described["effectiveRateLimit"]["requestsPerSecond"] == 7.5
    browser.screenshot(shots / "task-queue.png")


def test_the_namespaces_page_shows_retention_and_the_store(console, browser, shots):
    browser.goto(console.ui + "/namespaces")
    info = sdk(console.address, lambda c: c.workflow_service.describe_namespace(_describe_namespace_request()))
    retention = int(info.config.workflow_execution_retention_ttl.ToSeconds())
    assert browser.text('tr[data-namespace="default"] td.retention').split(" (")[0] == console_duration(retention)
    runs = sdk(console.address, lambda c: c.count_workflows()).count
    assert int(browser.text('tr[data-namespace="default"] td.num')) == runs
    assert int(browser.text("#segments")) >= 1
    assert "fdatasync" in browser.text("#fdatasync") or "mean" in browser.text("#fdatasync")
    browser.screenshot(shots / "namespaces.png")


def console_duration(seconds: int) -> str:
    """A whole number of seconds as the console writes a duration ("forever" for none)."""
    if seconds == 0:
        return "forever"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def _describe_namespace_request():
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    return DescribeNamespaceRequest(namespace="default")


@pytest.mark.parametrize("path, status, message", [
    ("/namespaces/default/workflows/order-completed/00000000-0000-0000-0000-000000000000", 404, "No run"),
    ("/namespaces/default/workflows/no-such-workflow", 404, "No workflow with the id"),
    ("/namespaces/default/workflows?query=WorkflowType%20%3D%3D%20", 400, "invalid query"),
    ("/namespaces/default/workflows?page=99999999999999999999", 400, "page number"),
    ("/namespaces/default/workflows?page=2&token=00ff", 400, "token"),
    ("/namespaces/default/workflows/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404, "<script>alert(1)</script>"),
    ("/namespaces/default/workflows/%E0%A4", 400, "not well formed"),
    ("/namespaces/default/workflows?size=100000", 400, "page size"),
])
def test_bad_input_gets_a_clear_page(console, browser, path, status, message):
    assert browser.goto(console.ui + path) == status
    assert message in browser.text(".error-message")
    assert browser.count("main script") == 0
    assert not browser.dialogs


def test_markup_in_a_workflow_id_and_its_input_is_shown_as_text(console, browser):
    browser.goto(console.ui + "/namespaces/default/workflows")
    assert browser.evaluate(f"[...document.querySelectorAll('tr[data-workflow-id]')].some(r => r.dataset.workflowId === {json.dumps(MARKUP_ID)})")
    browser.click(f"tr[data-workflow-id={json.dumps(MARKUP_ID)}] td.id a")
    assert browser.text("h1.id") == MARKUP_ID
    assert browser.evaluate("document.getElementById('evil')") is None
    assert browser.evaluate("document.getElementById('evil-img')") is None
    assert browser.count("main script, main img, main b#evil") == 0
    assert json.dumps(MARKUP_INPUT) in browser.text("#history")  # the input payload, as JSON
    assert not browser.dialogs


def test_with_api_keys_the_console_asks_for_a_key_once(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("console-key\n")
    server = ConsoleServer(tmp_path / "spool-data", ["--api-key-file", str(keys)])
    try:
        with Browser() as b:
            b.goto(server.ui + "/namespaces/default/workflows")
            assert b.evaluate("location.pathname") == "/login"
            b.fill('#login-form input[name="key"]', "wrong")
            b.click("#login-form button")
            assert "not one of the server" in b.text(".error-message")
            b.fill('#login-form input[name="key"]', "console-key")
            b.click("#login-form button")
            assert b.evaluate("location.pathname") == "/namespaces/default/workflows"
            # The session cookie is HttpOnly: no script of the page can read it.
            assert b.evaluate("document.cookie") == ""
            assert b.goto(server.ui + "/namespaces") == 200
    finally:
        server.stop()


def test_a_console_port_in_use_stops_the_server_with_a_message(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([str(spool_binary()), "serve", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
                                 "--ui", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"spool serve: --ui 127.0.0.1:{port}:" in result.stderr and "in use" in result.stderr
