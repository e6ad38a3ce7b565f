"""Interceptors and TLS through a real server: log line, request id, metrics, auth, INTERNAL."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import ssl

import aiohttp
import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nexy.app import NexyApp
from nexy.config import TLSSettings
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc.interceptors import hash_device
from nexy.transport.grpc.server import server_credentials
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.server import Running, make_settings, with_private_storage
from tests.waiting import eventually

LOGGER = "nexy.transport.grpc.interceptors"
STREAM = "streaming.StreamingService/StreamAudio"
TOKEN = "s3cret-bearer-token-42"
PROMPT = "what is my very private question"


@pytest.fixture
async def start_server(tmp_path_factory):
    """Like ``server_factory``, with a choice of channel credentials (for TLS)."""
    started: list[Running] = []

    async def start(settings=None, *, credentials=None, **kwargs):
        settings = with_private_storage(settings or make_settings(), tmp_path_factory)
        app = NexyApp(settings, **kwargs)
        await app.start(grpc_port=0, http_port=0)
        if credentials is None:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
        else:
            channel = grpc.aio.secure_channel(f"localhost:{app.grpc_port}", credentials)
        running = Running(app, channel)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.channel.close()
        await running.app.stop()


async def finish(call) -> grpc.StatusCode:
    """Read the rest of a stream (an unread stream stalls on flow control) and its status."""
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return await call.code()


def rpc_records(caplog, method: str | None = None) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == LOGGER
        and hasattr(record, "rpc_method")
        and (method is None or record.rpc_method == method)
    ]


async def test_one_log_line_per_rpc_without_raw_device_or_prompt(start_server, caplog):
    caplog.set_level(logging.INFO)
    server = await start_server()
    call = server.stub.StreamAudio(commit(PROMPT), metadata=(("x-request-id", "req-42"),))
    async for _ in call:
        pass
    await server.stub.InterruptSession(pb.InterruptRequest(hardware_id=HARDWARE_ID))
    await eventually(lambda: len(rpc_records(caplog)) == 2)
    (line,) = rpc_records(caplog, STREAM)
    assert line.rpc_code == "OK" and line.request_id == "req-42"
    assert line.duration_ms > 0 and line.device_hash == hash_device(HARDWARE_ID)
    message = line.getMessage()
    assert f"method={STREAM}" in message and "code=OK" in message
    assert "request_id=req-42" in message and "duration_ms=" in message
    (interrupt,) = rpc_records(caplog, "streaming.StreamingService/InterruptSession")
    assert interrupt.device_hash == line.device_hash
    for record in caplog.records:
        text = record.getMessage()
        assert HARDWARE_ID not in text and PROMPT not in text


async def test_request_id_is_echoed_or_made(start_server):
    server = await start_server()
    call = server.stub.StreamAudio(commit("hi"), metadata=(("x-request-id", "abc-1"),))
    assert dict(await call.initial_metadata())["x-request-id"] == "abc-1"
    assert await finish(call) == grpc.StatusCode.OK
    made = server.stub.StreamAudio(commit("hi"))
    assert re.fullmatch(r"[0-9a-f]{32}", dict(await made.initial_metadata())["x-request-id"])
    assert await finish(made) == grpc.StatusCode.OK
    odd = server.stub.StreamAudio(commit("hi"), metadata=(("x-request-id", "a b c"),))
    assert dict(await odd.initial_metadata())["x-request-id"] != "a b c"
    assert await finish(odd) == grpc.StatusCode.OK


async def test_metrics_per_method_and_code(start_server):
    server = await start_server()
    assert (await run_turn(server.stub, commit("hi"))).code == grpc.StatusCode.OK
    bad = await run_turn(server.stub, commit("hi", hardware_id=""))
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    await server.stub.ReportUsage(pb.UsageRequest(hardware_id=HARDWARE_ID, session_id="s"))
    sample = server.app.metrics.registry.get_sample_value
    usage = "streaming.StreamingService/ReportUsage"
    assert sample("nexy_grpc_requests_total", {"method": STREAM, "code": "OK"}) == 1
    assert sample("nexy_grpc_requests_total", {"method": STREAM, "code": "INVALID_ARGUMENT"}) == 1
    assert sample("nexy_grpc_requests_total", {"method": usage, "code": "OK"}) == 1
    assert sample("nexy_grpc_request_seconds_count", {"method": STREAM}) == 2
    assert sample("nexy_grpc_request_seconds_count", {"method": usage}) == 1
    assert "nexy_grpc_requests_total{" in server.app.metrics.render().decode()


async def test_auth_guards_nexy_rpcs_but_not_health_or_reflection(start_server, caplog):
    caplog.set_level(logging.INFO)
    settings = make_settings(**{"auth.enabled": True, "auth.tokens": [TOKEN]})
    server = await start_server(settings)
    missing = await run_turn(server.stub, commit("hi"))
    assert missing.code == grpc.StatusCode.UNAUTHENTICATED and missing.responses == []
    wrong = server.stub.StreamAudio(commit("hi"), metadata=(("authorization", "Bearer nope"),))
    assert await finish(wrong) == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await server.stub.InterruptSession(pb.InterruptRequest(hardware_id=HARDWARE_ID))
    assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
    good = server.stub.StreamAudio(commit("hi"), metadata=(("authorization", f"Bearer {TOKEN}"),))
    assert [r async for r in good][-1].end_message == "completed"
    assert await good.code() == grpc.StatusCode.OK
    health = await health_pb2_grpc.HealthStub(server.channel).Check(
        health_pb2.HealthCheckRequest(service="")
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    listing = reflection_pb2_grpc.ServerReflectionStub(server.channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = [s.name async for r in listing for s in r.list_services_response.service]
    assert "streaming.StreamingService" in names
    await eventually(lambda: len(rpc_records(caplog, STREAM)) == 3)
    codes = [record.rpc_code for record in rpc_records(caplog, STREAM)]
    assert codes == ["UNAUTHENTICATED", "UNAUTHENTICATED", "OK"]
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


async def test_handler_bug_is_internal_with_a_generic_message(start_server, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    server = await start_server()

    async def broken(*_args, **_kwargs):
        raise RuntimeError("boom at /secret/path")

    monkeypatch.setattr(server.app.outbox, "record", broken)
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await server.stub.ReportUsage(pb.UsageRequest(hardware_id=HARDWARE_ID, session_id="s"))
    assert unary.value.code() == grpc.StatusCode.INTERNAL
    assert unary.value.details() == "internal server error"
    monkeypatch.setattr(server.app.memory, "read_context", broken)
    streamed = await run_turn(server.stub, commit("hi"))
    assert streamed.code == grpc.StatusCode.INTERNAL
    assert streamed.details == "internal server error"
    await eventually(lambda: len(rpc_records(caplog)) == 2)
    (line,) = rpc_records(caplog, "streaming.StreamingService/ReportUsage")
    assert line.rpc_code == "INTERNAL" and line.error_type == "RuntimeError"
    assert line.levelno == logging.ERROR
    assert server.app.tracker.active == 0
    for record in caplog.records:
        assert "boom" not in record.getMessage() and record.exc_info is None


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    return cert_pem, tmp_path / "cert.pem", tmp_path / "key.pem"


async def test_tls_serves_a_turn(start_server, tmp_path):
    cert_pem, cert_file, key_file = _self_signed(tmp_path)
    settings = make_settings(**{"tls.cert_file": str(cert_file), "tls.key_file": str(key_file)})
    credentials = grpc.ssl_channel_credentials(root_certificates=cert_pem)
    server = await start_server(settings, credentials=credentials)
    assert server.app.grpc.tls
    result = await run_turn(server.stub, commit("hi"))
    assert result.code == grpc.StatusCode.OK and result.kinds[-1] == "end_message"
    # The HTTP side serves the same certificate.
    context = ssl.create_default_context(cadata=cert_pem.decode())
    url = f"https://localhost:{server.app.http_port}/health"
    async with aiohttp.ClientSession() as http, http.get(url, ssl=context) as response:
        assert response.status == 200 and (await response.json())["status"] == "OK"


def test_tls_needs_both_files(tmp_path):
    with pytest.raises(ValueError, match="set together"):
        server_credentials(TLSSettings(cert_file=tmp_path / "cert.pem"))
    with pytest.raises(OSError, match="cannot read TLS file"):
        server_credentials(TLSSettings(cert_file=tmp_path / "a", key_file=tmp_path / "b"))
    assert server_credentials(TLSSettings()) is None
