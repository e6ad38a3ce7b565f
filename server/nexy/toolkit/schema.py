"""Contract checks about the schema itself: server reflection, generated stubs, library versions.

Reflection shows what the *server* was built from; comparing it field by field with the local
``.proto`` catches a deployment running an older or renumbered contract. The stub check
regenerates the Python code from the ``.proto`` (like ``make proto``) and compares bytes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2  # type: ignore[import-untyped]  # no type info
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nexy.toolkit.connection import Target
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, failed, skipped, verdict
from nexy.transport.grpc import streaming_pb2 as pb

SERVICE = "streaming.StreamingService"
METHODS = {  # name: (request, response, server streaming)
    "StreamAudio": ("StreamRequest", "StreamResponse", True),
    "InterruptSession": ("InterruptRequest", "InterruptResponse", False),
    "GenerateWelcomeAudio": ("WelcomeRequest", "WelcomeResponse", True),
    "ReportUsage": ("UsageRequest", "UsageResponse", False),
}
PROTO = Path("nexy/transport/grpc/streaming.proto")
STUBS = ("streaming_pb2.py", "streaming_pb2.pyi", "streaming_pb2_grpc.py")
SERVER_DIR = Path(pb.__file__).resolve().parents[3]  # the folder that holds the nexy package


async def _reflect(channel: grpc.aio.Channel, request: Any, deadline: float) -> Any:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([request]), timeout=deadline)
    async for response in call:
        return response
    raise RuntimeError("reflection returned no response")


def _summary(file: Any) -> dict[str, Any]:
    """Messages → {field: (number, type, label, type name)} and enums → {name: number}."""
    out: dict[str, Any] = {}
    for message in file.message_type:
        fields = {f.name: (f.number, f.type, f.label, f.type_name) for f in message.field}
        out[f"message {message.name}"] = fields
        for nested in message.nested_type:  # map entries
            out[f"message {message.name}.{nested.name}"] = {
                f.name: (f.number, f.type, f.label, f.type_name) for f in nested.field
            }
    for enum in file.enum_type:
        out[f"enum {enum.name}"] = {v.name: v.number for v in enum.value}
    return out


def _local_file() -> Any:
    local = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(local)
    return local


async def reflection_checks(grpc_target: Target) -> list[Check]:
    """The server lists the service with its 4 methods, and its schema equals the local one."""
    channel = grpc_target.channel()
    deadline = grpc_target.timeout
    try:
        listed = await _reflect(
            channel, reflection_pb2.ServerReflectionRequest(list_services=""), deadline
        )
        services = sorted(s.name for s in listed.list_services_response.service)
        found = await _reflect(
            channel,
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
            deadline,
        )
    finally:
        await channel.close()
    if SERVICE not in services:
        detail = say(
            f"Reflection: {SERVICE} is not among {services}",
            f"Reflection: {SERVICE} нет среди {services}",
        )
        return [failed("contract.reflection", detail)]
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in found.file_descriptor_response.file_descriptor_proto
    ]
    remote = next(f for f in files if any(s.name == "StreamingService" for s in f.service))
    service = next(s for s in remote.service if s.name == "StreamingService")
    methods = {
        m.name: (m.input_type.split(".")[-1], m.output_type.split(".")[-1], m.server_streaming)
        for m in service.method
    }
    checks = [
        verdict(
            "contract.reflection",
            methods == METHODS,
            say(
                f"Reflection: {SERVICE} with methods {', '.join(methods)}",
                f"Reflection: {SERVICE} с методами {', '.join(methods)}",
            ),
            say(
                f"Reflection: methods {methods}, expected {METHODS}",
                f"Reflection: методы {methods}, ожидались {METHODS}",
            ),
        )
    ]
    local, theirs = _summary(_local_file()), _summary(remote)
    diff = sorted(k for k in local.keys() | theirs.keys() if local.get(k) != theirs.get(k))
    checks.append(
        verdict(
            "contract.server_schema",
            not diff,
            say(
                f"Server schema matches the local .proto ({len(local)} messages and enums)",
                f"Схема сервера совпадает с локальным .proto ({len(local)} сообщений и enum)",
            ),
            say(
                f"Server schema differs from the local .proto: {', '.join(diff)}",
                f"Схема сервера отличается от локального .proto: {', '.join(diff)}",
            ),
        )
    )
    return checks


def stub_check() -> Check:
    """Regenerate the stubs from the .proto and compare them with the committed ones."""
    if not (SERVER_DIR / PROTO).exists():
        detail = say(
            f"Stubs: {PROTO} not found next to the package (skipped)",
            f"Стабы: {PROTO} не найден рядом с пакетом (пропущено)",
        )
        return skipped("contract.stubs", detail)
    if importlib.util.find_spec("grpc_tools") is None:
        detail = say(
            "Stubs: grpcio-tools is not installed, comparison skipped",
            "Стабы: grpcio-tools не установлен, сверка пропущена",
        )
        return skipped("contract.stubs", detail)
    with tempfile.TemporaryDirectory(prefix="nexy-proto-") as out:
        command = [sys.executable, "-m", "grpc_tools.protoc", "-I.", f"--python_out={out}"]
        command += [f"--pyi_out={out}", f"--grpc_python_out={out}", str(PROTO)]
        done = subprocess.run(command, cwd=SERVER_DIR, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            detail = say(
                f"Stubs: protoc failed: {done.stderr}",
                f"Стабы: protoc завершился с ошибкой: {done.stderr}",
            )
            return failed("contract.stubs", detail)
        stale = [
            name
            for name in STUBS
            if (Path(out) / PROTO.parent / name).read_bytes()
            != (SERVER_DIR / PROTO.parent / name).read_bytes()
        ]
    return verdict(
        "contract.stubs",
        not stale,
        say(
            f"Stubs are generated from the current .proto: {', '.join(STUBS)}",
            f"Стабы сгенерированы из текущего .proto: {', '.join(STUBS)}",
        ),
        say(
            f"Stubs are stale ({', '.join(stale)}): regenerate them (make proto)",
            f"Стабы устарели ({', '.join(stale)}): перегенерируйте (make proto)",
        ),
    )


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:3] if p.isdigit())


def version_check() -> Check:
    """Runtime grpcio/protobuf versions, and that they are not older than the stubs need."""
    runtime = {
        name: metadata.version(name)
        for name in ("grpcio", "protobuf", "grpcio-tools")
        if _installed(name)
    }
    generated_grpc = _generated_grpc_version()
    problems = []
    if generated_grpc and _parts(runtime.get("grpcio", "0")) < _parts(generated_grpc):
        have = runtime.get("grpcio")
        problems.append(
            say(
                f"grpcio {have} < {generated_grpc} (the stubs need it)",
                f"grpcio {have} < {generated_grpc} (нужно для стабов)",
            )
        )
    listed = ", ".join(f"{name} {version}" for name, version in runtime.items())
    return verdict(
        "contract.versions",
        not problems,
        say(
            f"Versions: {listed}; stubs generated for grpcio {generated_grpc or '?'}",
            f"Версии: {listed}; стабы сгенерированы для grpcio {generated_grpc or '?'}",
        ),
        say(
            f"Incompatible versions: {'; '.join(problems)}",
            f"Версии несовместимы: {'; '.join(problems)}",
        ),
    )


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _generated_grpc_version() -> str:
    path = SERVER_DIR / PROTO.parent / "streaming_pb2_grpc.py"
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("GRPC_GENERATED_VERSION"):
                return line.split("=", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    return ""


def local_checks() -> list[Check]:
    return [stub_check(), version_check()]
