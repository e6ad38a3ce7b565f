"""The playground's turn endpoint: one WebSocket carries one turn through gRPC's StreamAudio.

A browser cannot speak gRPC, so this module gives the servicer a stand-in for its call context
(:class:`SocketCall`): every ``StreamResponse`` the handler writes becomes a WebSocket message,
and the status it sets becomes the code of the error message. Validation, admission and every
limit, the memory read, the turn runner, the journal and the rule of exactly one terminal
message are therefore the gRPC ones, not a copy. The message shapes are in
docs/GRPC_PROTOCOL.md, "Browser endpoint (playground)".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from contextlib import suppress

import grpc
from aiohttp import WSMessage, WSMsgType, web
from google.protobuf.json_format import ParseDict, ParseError  # type: ignore[import-untyped]

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc.interceptors import INTERNAL_TEXT, hash_device
from nexy.transport.http.playground.site import Playground, Refused
from nexy.transport.http.slow_clients import HeaderDeadline

log = logging.getLogger(__name__)

# How long the last message and the close may take once the turn is over.
_LAST_WORDS_SECONDS = 2.0
_GONE = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


class SocketCall:
    """The part of ``grpc.aio.ServicerContext`` the Nexy handlers use, over a WebSocket.

    Audio goes out as binary frames of PCM, announced by an ``audio_format`` message whenever
    the rate changes; everything else as one JSON text message each.
    """

    def __init__(self, ws: web.WebSocketResponse, peer: str) -> None:
        self._ws = ws
        self._peer = peer
        self._sample_rate = 0
        self._error: str | None = None  # the handler's error_message, sent once its code is set
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.ended = False  # the terminal message was sent

    def peer(self) -> str:
        return self._peer

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    async def write(self, response: pb.StreamResponse) -> None:
        kind = response.WhichOneof("content")
        if kind == "text_chunk":
            await self._send({"type": "text_chunk", "text": response.text_chunk})
        elif kind == "audio_chunk":
            await self._audio(response.audio_chunk)
        elif kind == "action_message":
            action = response.action_message
            await self._send(
                {
                    "type": "action_message",
                    "action": json.loads(action.action_json),
                    "session_id": action.session_id,
                }
            )
        elif kind == "end_message":
            await self._send({"type": "end_message", "message": response.end_message})
            self.ended = True
        elif kind == "error_message":
            # The servicer writes the message first and sets its status right after.
            self._error = response.error_message

    async def fail(self, code: grpc.StatusCode, message: str) -> None:
        """Send the terminal error message."""
        self.code = code
        await self._send({"type": "error_message", "code": code.name, "message": message})
        self.ended = True

    async def finish(self) -> None:
        """After the handler returned: send its error, unless its end was sent already.

        Covers the streams gRPC ends with a status alone (an idle or slow client) and, as
        INTERNAL, a handler that ended without any terminal message at all.
        """
        if self.ended:
            return
        code = self.code if self.code not in (None, grpc.StatusCode.OK) else None
        if code is None:
            await self.fail(grpc.StatusCode.INTERNAL, INTERNAL_TEXT)
        else:
            await self.fail(code, self._error if self._error is not None else self.details)

    async def _audio(self, chunk: pb.AudioChunk) -> None:
        if chunk.sample_rate != self._sample_rate:
            self._sample_rate = chunk.sample_rate
            await self._send(
                {
                    "type": "audio_format",
                    "sample_rate": chunk.sample_rate,
                    "channels": chunk.channels,
                    "dtype": chunk.dtype,
                }
            )
        await self._ws.send_bytes(chunk.audio_data)

    async def _send(self, message: dict[str, object]) -> None:
        await self._ws.send_str(json.dumps(message, ensure_ascii=False))


async def turn_socket(pg: Playground, request: web.Request) -> web.WebSocketResponse:
    """Serve one turn: read the request, run it, stream it, close."""
    ws = web.WebSocketResponse(max_msg_size=pg.settings.server.max_inbound_message_bytes)
    await ws.prepare(request)
    protocol = request.transport.get_protocol() if request.transport else None
    if isinstance(protocol, HeaderDeadline):
        protocol.upgraded()  # frames are not requests: the header deadline no longer applies
    call = SocketCall(ws, _peer(request))
    started = time.perf_counter()
    hardware_id = ""
    try:
        stream_request = await _read_request(pg, request, ws, call)
        if stream_request is not None:
            hardware_id = stream_request.hardware_id
            await _run(pg, ws, call, stream_request)
    finally:
        with suppress(TimeoutError):
            async with asyncio.timeout(_LAST_WORDS_SECONDS):
                await ws.close()
        _log(call, hardware_id, time.perf_counter() - started)
    return ws


async def _read_request(
    pg: Playground, request: web.Request, ws: web.WebSocketResponse, call: SocketCall
) -> pb.StreamRequest | None:
    """The first message as a StreamRequest; None (the error sent) when it is not one."""
    idle = pg.settings.limits.idle_timeout_seconds
    try:
        async with asyncio.timeout(idle):
            message = await ws.receive()
    except TimeoutError:
        await call.fail(grpc.StatusCode.DEADLINE_EXCEEDED, f"no request arrived within {idle:g} s")
        return None
    if message.type in _GONE:
        return None
    try:
        return _parse(pg, request, message)
    except Refused as exc:
        await call.fail(exc.code, exc.message)
        return None


def _parse(pg: Playground, request: web.Request, message: WSMessage) -> pb.StreamRequest:
    """JSON → StreamRequest (proto3 JSON names, as grpcurl takes them) plus ``token``."""
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    if message.type is not WSMsgType.TEXT:
        raise Refused(invalid, "send the request as one JSON text message")
    try:
        data = json.loads(message.data)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise Refused(invalid, "the request is not valid JSON") from None
    if not isinstance(data, dict):
        raise Refused(invalid, "the request must be a JSON object")
    token = data.pop("token", None)
    hardware_id = data.get("hardware_id", data.get("hardwareId", ""))
    pg.check_token(request, token, hardware_id if isinstance(hardware_id, str) else "")
    try:
        parsed: pb.StreamRequest = ParseDict(data, pb.StreamRequest())
    except (ParseError, ValueError, TypeError) as exc:
        raise Refused(invalid, f"the request is not a StreamRequest: {exc}") from None
    if not parsed.session_id:
        parsed.session_id = str(uuid.uuid4())  # the socket is the session: the client may omit it
    return parsed


async def _run(
    pg: Playground, ws: web.WebSocketResponse, call: SocketCall, request: pb.StreamRequest
) -> None:
    """StreamAudio while the socket is read for interrupts; a closed socket cancels the turn."""
    turn = asyncio.create_task(pg.servicer.StreamAudio(request, call))
    watch = asyncio.create_task(_watch(pg, ws, call, request.hardware_id))
    try:
        await asyncio.wait((turn, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        # The client gone: cancel the turn, as gRPC does when its caller cancels.
        for task in (turn, watch):
            task.cancel()
        await asyncio.gather(turn, watch, return_exceptions=True)
    if turn.cancelled() or ws.closed:
        return  # nobody is listening any more
    failure = turn.exception()
    if failure is not None and not isinstance(failure, ConnectionError):
        # The RPC boundary, as in the exception interceptor: a bug becomes INTERNAL.
        log.error("playground turn failed: %s", type(failure).__name__)
        call.set_code(grpc.StatusCode.INTERNAL)
        call.set_details(INTERNAL_TEXT)
    with suppress(TimeoutError, ConnectionError):  # a client that stopped reading gets no more
        async with asyncio.timeout(_LAST_WORDS_SECONDS):
            await call.finish()


async def _watch(
    pg: Playground, ws: web.WebSocketResponse, call: SocketCall, hardware_id: str
) -> None:
    """Return when the client goes; ``{"type": "interrupt"}`` is InterruptSession for the device."""
    async for message in ws:
        if message.type is not WSMsgType.TEXT:
            continue
        try:
            data = json.loads(message.data)
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict) and data.get("type") == "interrupt":
            await pg.servicer.InterruptSession(pb.InterruptRequest(hardware_id=hardware_id), call)


def _peer(request: web.Request) -> str:
    """The client in gRPC's peer form, so per-connection and per-address limits apply alike."""
    peername = request.transport.get_extra_info("peername") if request.transport else None
    if not isinstance(peername, tuple) or len(peername) < 2:
        return ""
    host, port = peername[0], peername[1]
    return f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"


def _log(call: SocketCall, hardware_id: str, seconds: float) -> None:
    """One line per turn, like the gRPC log line (the device as its pseudonym)."""
    code = call.code.name if call.code else ("OK" if call.ended else "CANCELLED")
    log.info(
        "playground turn code=%s duration_ms=%.1f device=%s",
        code,
        seconds * 1000,
        hash_device(hardware_id),
    )
