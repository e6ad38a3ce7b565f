"""The generated stubs match the .proto, and the wire numbers never drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import google.protobuf
import grpc

from nexy.transport.grpc import streaming_pb2 as pb

SERVER = Path(__file__).resolve().parents[2]
PROTO = "nexy/transport/grpc/streaming.proto"


def test_stubs_are_generated_from_the_proto(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            PROTO,
        ],
        cwd=SERVER,
        check=True,
    )
    for name in ("streaming_pb2.py", "streaming_pb2.pyi", "streaming_pb2_grpc.py"):
        generated = (tmp_path / "nexy/transport/grpc" / name).read_text()
        committed = (SERVER / "nexy/transport/grpc" / name).read_text()
        assert generated == committed, f"{name} is stale: regenerate it from the .proto"


def _fields(message) -> dict[str, tuple[int, int]]:
    return {f.name: (f.number, f.type) for f in message.DESCRIPTOR.fields}


def test_wire_field_numbers():
    fd = google.protobuf.descriptor.FieldDescriptor
    assert _fields(pb.StreamRequest) == {
        "prompt": (1, fd.TYPE_STRING),
        "screenshot": (2, fd.TYPE_STRING),
        "screen_width": (3, fd.TYPE_INT32),
        "screen_height": (4, fd.TYPE_INT32),
        "hardware_id": (5, fd.TYPE_STRING),
        "session_id": (6, fd.TYPE_STRING),
        "phase": (7, fd.TYPE_ENUM),
        "chunk_seq": (8, fd.TYPE_INT32),
        "chunk_text": (9, fd.TYPE_STRING),
    }
    assert {k: v[0] for k, v in _fields(pb.StreamResponse).items()} == {
        "text_chunk": 1,
        "audio_chunk": 2,
        "end_message": 3,
        "error_message": 4,
        "action_message": 5,
        "browser_progress": 6,
    }
    assert {k: v[0] for k, v in _fields(pb.AudioChunk).items()} == {
        "audio_data": 1,
        "dtype": 2,
        "shape": 3,
        "sample_rate": 4,
        "channels": 5,
    }
    assert {k: v[0] for k, v in _fields(pb.WelcomeResponse).items()} == {
        "audio_chunk": 1,
        "metadata": 2,
        "end_message": 3,
        "error_message": 4,
    }
    assert {k: v[0] for k, v in _fields(pb.InterruptResponse).items()} == {
        "success": 1,
        "interrupted_sessions": 2,
        "message": 3,
    }
    assert {k: v[0] for k, v in _fields(pb.UsageRequest).items()} == {
        "hardware_id": 1,
        "session_id": 2,
        "source": 3,
        "input_tokens": 4,
        "output_tokens": 5,
        "model": 6,
    }
    assert pb.REQUEST_PHASE_COLLECT == 1 and pb.REQUEST_PHASE_COMMIT == 2
    assert pb.BROWSER_TASK_CANCELLED == 6


def test_service_paths():
    service = pb.DESCRIPTOR.services_by_name["StreamingService"]
    assert service.full_name == "streaming.StreamingService"
    assert [m.name for m in service.methods] == [
        "StreamAudio",
        "InterruptSession",
        "GenerateWelcomeAudio",
        "ReportUsage",
    ]


def test_pinned_runtime_versions():
    pyproject = (SERVER.parent / "pyproject.toml").read_text()
    assert f'"grpcio=={grpc.__version__}"' in pyproject
    assert f'"protobuf=={google.protobuf.__version__}"' in pyproject
