"""`spool serve` security (issue 22, point 3): TLS, mutual TLS, API keys and the request size
limit, seen through Temporal's Python SDK as a user of Temporal Cloud would see them."""

import asyncio
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, TLSConfig
from temporalio.service import RPCError, RPCStatusCode

from conftest import Server, spool_binary


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 / localhost, and a client certificate, all PEM."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=spool-test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    # Extensions make them X.509 v3 certificates, the only kind rustls (the SDK's TLS) accepts.
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=spool-test-{name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)
    return d


def start(tmp_path: Path, *extra: str) -> Server:
    return Server(tmp_path / "spool-data", list(extra))


async def system_info(address: str, **options) -> None:
    client = await Client.connect(address, **options)
    await client.workflow_service.get_system_info(GetSystemInfoRequest())


def run(coroutine, timeout=30):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def test_tls_serves_clients_that_trust_its_ca_and_refuses_plaintext(tmp_path, pki):
    server = start(tmp_path, "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"))
    try:
        assert server.first_line.endswith(", TLS"), server.first_line
        tls = TLSConfig(server_root_ca_cert=(pki / "ca.pem").read_bytes(), domain="localhost")
        run(system_info(server.address, tls=tls))
        with pytest.raises(Exception):
            run(system_info(server.address), timeout=20)
    finally:
        server.stop()


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path, pki):
    server = start(tmp_path, "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                   "--tls-client-ca", str(pki / "ca.pem"))
    try:
        assert server.first_line.endswith(", mutual TLS"), server.first_line
        ca = (pki / "ca.pem").read_bytes()
        run(system_info(server.address, tls=TLSConfig(
            server_root_ca_cert=ca, domain="localhost",
            client_cert=(pki / "client.pem").read_bytes(), client_private_key=(pki / "client.key").read_bytes())))
        with pytest.raises(Exception):
            run(system_info(server.address, tls=TLSConfig(server_root_ca_cert=ca, domain="localhost")), timeout=20)
    finally:
        server.stop()


def test_api_keys_are_required_when_a_key_file_is_given(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# the operators' keys\nkey-one\n\n  key-two  \n")
    server = start(tmp_path, "--api-key-file", str(keys))
    try:
        assert server.first_line.endswith(", API keys required"), server.first_line
        # The SDK turns TLS on with an API key unless told otherwise; this server is plaintext.
        run(system_info(server.address, api_key="key-one", tls=False))
        run(system_info(server.address, api_key="key-two", tls=False))
        for options in ({}, {"api_key": "key-three", "tls": False}, {"api_key": "key-on", "tls": False}):
            # The SDK's connect makes a GetSystemInfo call and reports its failure as a
            # RuntimeError that quotes the status.
            with pytest.raises(RuntimeError) as refused:
                run(system_info(server.address, **options))
            assert "code: Unauthenticated" in str(refused.value), (options, refused.value)
    finally:
        server.stop()


def test_a_request_over_the_size_limit_is_refused_and_writes_nothing(tmp_path):
    server = start(tmp_path, "--max-request-bytes", "65536")

    async def scenario():
        client = await Client.connect(server.address)
        workflow_id = f"big-{uuid.uuid4()}"
        with pytest.raises(RPCError) as refused:
            await client.start_workflow("Big", "x" * 100_000, id=workflow_id, task_queue="q",
                                        execution_timeout=timedelta(seconds=30))
        assert refused.value.status == RPCStatusCode.RESOURCE_EXHAUSTED, refused.value
        # Nothing was started; a small request still works.
        with pytest.raises(RPCError) as missing:
            await client.get_workflow_handle(workflow_id).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND
        await client.start_workflow("Small", "x", id=workflow_id, task_queue="q")

    try:
        run(scenario())
    finally:
        server.stop()


@pytest.mark.parametrize("arguments, words", [
    (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], "--tls-cert /nonexistent.pem"),
    (["--tls-cert", "x"], "--tls-cert and --tls-key go together"),
    (["--max-request-bytes", "10"], "--max-request-bytes"),
    (["--search-attribute", "CustomerId=Blob"], "--search-attribute CustomerId=Blob: expected NAME=TYPE"),
    (["--search-attribute", "=Keyword"], "--search-attribute =Keyword"),
])
def test_bad_security_options_exit_64_naming_the_option(tmp_path, arguments, words):
    result = subprocess.run([str(spool_binary()), "serve", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0", *arguments],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 64, result
    assert words in result.stderr, result.stderr
    assert not (tmp_path / "d").exists()


def test_an_empty_key_file_is_refused(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# nothing\n\n")
    result = subprocess.run([str(spool_binary()), "serve", "--data", str(tmp_path / "d"), "--api-key-file", str(keys)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 64, result
    assert "holds no key" in result.stderr
