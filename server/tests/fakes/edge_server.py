"""A local stand-in for Microsoft Edge's read-aloud websocket, close enough for ``edge_tts``.

It speaks the service's framing: text messages are ``Header:value`` lines, a blank line, then
a JSON body; binary messages start with a 2-byte big-endian header length, then the header
lines, then the payload. Per utterance the client sends ``speech.config`` and ``ssml``; the
fake answers ``turn.start``, the MP3 in ``Path:audio`` pieces (optionally paced), the empty
end-of-audio message, a ``SentenceBoundary`` in ``audio.metadata`` and ``turn.end``. Every
request's SSML is recorded, with the voice and rate pulled out of it.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import lameenc  # type: ignore[import-not-found]
import numpy as np
from aiohttp import WSMsgType, web

Failure = Literal["", "no_audio", "http_403", "http_404"]

_VOICE = re.compile(r"<voice name='Microsoft Server Speech Text to Speech Voice \((.+?), (.+?)\)'>")
_RATE = re.compile(r"rate='([^']*)'")
_TEXT = re.compile(r"<prosody [^>]*>(.*)</prosody>", re.DOTALL)


def tone_mp3(
    seconds: float,
    frequency: float = 440.0,
    *,
    sample_rate: int = 24000,
    kbps: int = 48,
    channels: int = 1,
) -> bytes:
    """A sine tone (the same in every channel) as CBR MP3 from LAME; Edge's format by default."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    tone = (np.sin(2 * np.pi * frequency * t) * 12000).astype("<i2")
    pcm = np.repeat(tone, channels).tobytes()  # interleaved frames
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)
    encoder.set_channels(channels)
    encoder.set_quality(5)
    encoder.silence()
    return bytes(encoder.encode(pcm)) + bytes(encoder.flush())


@dataclass(frozen=True, slots=True)
class SynthesisRequest:
    """What one connection asked for."""

    path: str
    speech_config: dict[str, Any]
    ssml: str
    voice: str  # short form, e.g. "ru-RU-SvetlanaNeural"
    rate: str
    text: str


class FakeEdgeServer:
    """Serves ``mp3`` to every synthesis request on 127.0.0.1 at a free port."""

    def __init__(
        self,
        mp3: bytes,
        *,
        message_bytes: int = 1000,
        delay_seconds: float = 0.0,
        failure: Failure = "",
    ) -> None:
        self.mp3 = mp3
        self.message_bytes = message_bytes
        self.delay_seconds = delay_seconds
        self.failure = failure
        self.requests: list[SynthesisRequest] = []
        self.connections = 0
        self.audio_messages_sent = 0
        self.audio_messages_total = -(-len(mp3) // message_bytes)
        self.last_audio_sent = asyncio.Event()  # the final audio piece has gone out
        self.client_closed = asyncio.Event()  # a client closed its websocket
        self.finished_early = False  # a client closed before the utterance was complete
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def open_websockets(self) -> int:
        """Connections whose close handshake has not happened yet."""
        return sum(not ws.closed for ws in self._sockets)

    @property
    def endpoint(self) -> str:
        """The URL to give ``EdgeTTS(endpoint=…)`` (Edge's path and token, local host)."""
        return (
            f"ws://127.0.0.1:{self.port}/consumer/speech/synthesize/readaloud/edge/v1"
            "?TrustedClientToken=6A5AA1D4EAFF4E9FB37E23D68491D6F4"
        )

    async def start(self) -> FakeEdgeServer:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeEdgeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.failure in ("http_403", "http_404"):
            return web.Response(status=int(self.failure[-3:]), text="refused")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        self.connections += 1
        config = await _receive_text(ws)
        ssml = await _receive_text(ws)
        self.requests.append(_parse_request(request.path_qs, config, ssml))
        speaker = asyncio.create_task(self._speak(ws, uuid.uuid4().hex))
        # Reading until the client closes is what answers its close frame promptly.
        async for _ in ws:
            pass
        self.finished_early = not speaker.done()
        speaker.cancel()
        await asyncio.gather(speaker, return_exceptions=True)
        self.client_closed.set()
        return ws

    async def _speak(self, ws: web.WebSocketResponse, request_id: str) -> None:
        await ws.send_str(_text_message(request_id, "turn.start", {"context": {}}))
        if self.failure != "no_audio":
            for start in range(0, len(self.mp3), self.message_bytes):
                if start and self.delay_seconds:
                    await asyncio.sleep(self.delay_seconds)
                piece = self.mp3[start : start + self.message_bytes]
                await ws.send_bytes(_audio_message(request_id, piece))
                self.audio_messages_sent += 1
            self.last_audio_sent.set()
            await ws.send_bytes(_audio_message(request_id, b""))  # Edge's end-of-audio marker
            await ws.send_str(_text_message(request_id, "audio.metadata", _boundary()))
        await ws.send_str(_text_message(request_id, "turn.end", {}))


async def _receive_text(ws: web.WebSocketResponse) -> str:
    message = await ws.receive()
    if message.type is not WSMsgType.TEXT:
        raise AssertionError(f"expected a text message, got {message.type}")
    return str(message.data)


def _parse_request(path: str, config: str, ssml: str) -> SynthesisRequest:
    config_headers, _, config_body = config.partition("\r\n\r\n")
    ssml_headers, _, ssml_body = ssml.partition("\r\n\r\n")
    if "Path:speech.config" not in config_headers or "Path:ssml" not in ssml_headers:
        raise AssertionError("expected speech.config, then ssml")
    voice, rate, text = _VOICE.search(ssml_body), _RATE.search(ssml_body), _TEXT.search(ssml_body)
    if voice is None or rate is None or text is None:
        raise AssertionError(f"unexpected SSML: {ssml_body}")
    return SynthesisRequest(
        path=path,
        speech_config=json.loads(config_body),
        ssml=ssml_body,
        voice=f"{voice.group(1)}-{voice.group(2)}",
        rate=rate.group(1),
        text=text.group(1),
    )


def _text_message(request_id: str, path: str, body: dict[str, Any]) -> str:
    headers = f"X-RequestId:{request_id}\r\nContent-Type:application/json; charset=utf-8\r\n"
    return f"{headers}Path:{path}\r\n\r\n{json.dumps(body)}"


def _audio_message(request_id: str, mp3: bytes) -> bytes:
    # The end-of-audio marker has no Content-Type and no payload. The header block ends in
    # CRLF: the client reads the 2-byte length as part of the headers and skips 2 bytes more.
    content_type = "Content-Type:audio/mpeg\r\n" if mp3 else ""
    headers = f"X-RequestId:{request_id}\r\n{content_type}X-StreamId:{request_id}\r\nPath:audio\r\n"
    encoded = headers.encode()
    return len(encoded).to_bytes(2, "big") + encoded + mp3


def _boundary() -> dict[str, Any]:
    boundary = {"Offset": 1_000_000, "Duration": 5_000_000, "text": {"Text": "Hello"}}
    return {"Metadata": [{"Type": "SentenceBoundary", "Data": boundary}]}
