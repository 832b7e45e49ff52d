"""Namespaces and search attributes through `spool serve`: the official CLI's `operator namespace`
and `operator search-attribute` commands, the SDK refused on an unknown namespace as Temporal
refuses it, `spool serve --namespace`, and registrations that survive a restart."""

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from conftest import Server

TEMPORAL = Path(sys.executable).parent / "temporal"


def cli(server, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(TEMPORAL), *args, "--address", server.address], capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def test_namespaces_and_search_attributes_with_the_cli_and_the_sdk(tmp_path):
    server = Server(tmp_path / "data")
    try:
        async def refused():
            client = await Client.connect(server.address, namespace="billing")
            with pytest.raises(RPCError) as missing:
                await client.start_workflow("invoice", id="w", task_queue="q")
            assert missing.value.status == RPCStatusCode.NOT_FOUND
            assert "namespace 'billing' is not registered" in missing.value.message

        asyncio.run(asyncio.wait_for(refused(), 60))

        cli(server, "operator", "namespace", "create", "--namespace", "billing", "--retention", "72h",
            "--description", "invoices", "--email", "ops@example.com")
        described = json.loads(cli(server, "operator", "namespace", "describe", "--namespace", "billing", "-o", "json").stdout)
        assert described["namespaceInfo"]["name"] == "billing"
        assert described["namespaceInfo"]["description"] == "invoices"
        assert described["namespaceInfo"]["ownerEmail"] == "ops@example.com"
        assert described["namespaceInfo"]["state"] == "NAMESPACE_STATE_REGISTERED"
        assert described["config"]["workflowExecutionRetentionTtl"] == "259200s"
        again = cli(server, "operator", "namespace", "create", "--namespace", "billing", ok=False)
        assert again.returncode != 0 and "already" in (again.stdout + again.stderr).lower(), again

        cli(server, "operator", "namespace", "update", "--namespace", "billing", "--retention", "24h")
        listed = cli(server, "operator", "namespace", "list", "-o", "json").stdout
        assert "billing" in listed and "default" in listed and "86400s" in listed, listed

        cli(server, "operator", "search-attribute", "create", "--namespace", "billing", "--name", "CustomerId", "--type", "Keyword")
        attributes = json.loads(cli(server, "operator", "search-attribute", "list", "--namespace", "billing", "-o", "json").stdout)
        assert attributes["customAttributes"] == {"CustomerId": "INDEXED_VALUE_TYPE_KEYWORD"}, attributes
        assert attributes["systemAttributes"]["WorkflowType"] == "INDEXED_VALUE_TYPE_KEYWORD"
        assert attributes["systemAttributes"]["StartTime"] == "INDEXED_VALUE_TYPE_DATETIME"

        async def use():
            client = await Client.connect(server.address, namespace="billing")
            await client.start_workflow("invoice", id=f"w-{uuid.uuid4()}", task_queue="q")
            assert (await client.count_workflows("CustomerId IS NULL")).count == 1
            default = await Client.connect(server.address)
            with pytest.raises(RPCError) as unknown:
                await default.count_workflows("CustomerId IS NULL")
            assert unknown.value.status == RPCStatusCode.INVALID_ARGUMENT

        asyncio.run(asyncio.wait_for(use(), 60))
    finally:
        server.stop()

    # A restart keeps the registration; --namespace registers another at startup.
    restarted = Server(tmp_path / "data", ["--namespace", "shipping", "--namespace", "billing"])
    try:
        names = cli(restarted, "operator", "namespace", "list", "-o", "json").stdout
        assert "billing" in names and "shipping" in names and "86400s" in names, names
        attributes = json.loads(cli(restarted, "operator", "search-attribute", "list", "--namespace", "billing", "-o", "json").stdout)
        assert attributes["customAttributes"] == {"CustomerId": "INDEXED_VALUE_TYPE_KEYWORD"}
        removed = cli(restarted, "operator", "search-attribute", "remove", "--namespace", "billing", "--name", "CustomerId", "--yes")
        assert removed.returncode == 0
        attributes = json.loads(cli(restarted, "operator", "search-attribute", "list", "--namespace", "billing", "-o", "json").stdout)
        assert attributes.get("customAttributes", {}) == {}
    finally:
        restarted.stop()


def test_search_attributes_registered_at_startup_are_queried_as_the_sdk_sets_them(tmp_path):
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    server = Server(tmp_path / "data", ["--search-attribute", "CustomerId=Keyword", "--search-attribute", "Amount=double"])
    customer = SearchAttributeKey.for_keyword("CustomerId")
    amount = SearchAttributeKey.for_float("Amount")
    try:
        async def scenario():
            client = await Client.connect(server.address)
            for index, (who, how_much) in enumerate([("c-42", 12.5), ("c-7", 99.0), ("c-42", 150.0)]):
                await client.start_workflow(
                    "invoice", id=f"sa-{index}", task_queue="q",
                    search_attributes=TypedSearchAttributes([SearchAttributePair(customer, who), SearchAttributePair(amount, how_much)]))
            ids = [w.id async for w in client.list_workflows("CustomerId = 'c-42' AND Amount < 100")]
            assert ids == ["sa-0"], ids
            assert (await client.count_workflows("Amount >= 99")).count == 2
            described = await client.get_workflow_handle("sa-1").describe()
            assert described.typed_search_attributes.get(customer) == "c-7"
            # An attribute nobody registered is refused, as Temporal refuses it, and nothing starts.
            with pytest.raises(RPCError) as unregistered:
                await client.start_workflow("invoice", id="sa-x", task_queue="q", search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(SearchAttributeKey.for_keyword("Region"), "eu")]))
            assert unregistered.value.status == RPCStatusCode.INVALID_ARGUMENT
            assert "search attribute Region is not defined" in unregistered.value.message
            assert (await client.count_workflows("")).count == 3

        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        server.stop()
