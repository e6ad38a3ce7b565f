"""A local stand-in for Google's Generative Language API: the streaming generate call only.

It speaks the wire protocol the ``google-genai`` SDK uses, ``POST
/v1beta/models/{model}:streamGenerateContent?alt=sse`` with the key in ``x-goog-api-key`` and
server-sent events back, and answers errors with Google's JSON error bodies. Every request is
recorded so tests can check what really went over the wire.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.http_server import serve

GOOD_KEY = "AIzaFAKE-good-key-0000000000000000000"
BACKUP_KEY = "AIzaFAKE-backup-key-111111111111111111"
BAD_KEY = "AIzaFAKE-revoked-key-22222222222222222"

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_MESSAGES = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in the troubleshooting guide.",
    503: "The model is overloaded. Please try again later.",
}


@dataclass
class SeenRequest:
    """One request as the fake received it."""

    path: str
    model: str
    query: dict[str, str]
    api_key: str
    body: dict[str, Any]


@dataclass
class FakeGemini:
    """The fake's script (what to answer) and its record (what it was asked)."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", " from", " the", " fake."])
    delay: float = 0.0  # seconds between chunks
    valid_keys: set[str] = field(default_factory=lambda: {GOOD_KEY, BACKUP_KEY})
    key_error_status: int = 400  # Google answers a bad key with 400 API_KEY_INVALID
    status: int | None = None  # answer every request with this error status
    echo_key: bool = False  # quote the received key in error messages (as some proxies do)
    usage: tuple[int, int] = (21, 7)  # prompt and output tokens reported in the last chunk
    requests: list[SeenRequest] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # chunks written so far, across requests
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""

    def app(self) -> web.Application:
        """The aiohttp application serving this fake."""
        app = web.Application()
        # Google serves both versions; the SDK's default is v1, the provider pins v1beta.
        for version in ("v1", "v1beta"):
            route = f"/{version}/models/{{model}}:streamGenerateContent"
            app.router.add_post(route, self._generate)
        return app

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-goog-api-key", "")
        body = await request.json()
        model = request.match_info["model"]
        self.requests.append(SeenRequest(request.path, model, dict(request.query), key, body))
        if key not in self.valid_keys:
            return self._key_error(key)
        if self.status is not None:
            return self._error(self.status, _MESSAGES.get(self.status, "Error."), key)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for index, text in enumerate(self.chunks):
                last = index == len(self.chunks) - 1
                await response.write(b"data: " + json.dumps(self._chunk(text, last)).encode())
                await response.write(b"\r\n\r\n")
                self.sent.append(text)
                if not last:
                    await asyncio.sleep(self.delay)
        except ConnectionResetError:  # the client went away: nothing more to write
            self.disconnected.set()
            return response
        except asyncio.CancelledError:
            self.disconnected.set()
            raise
        await response.write_eof()
        return response

    def _chunk(self, text: str, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if last:
            candidate["finishReason"] = "STOP"
        prompt, output = self.usage
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": "fake-gemini"}
        if last:  # Google reports the running totals; the last chunk holds the final ones
            chunk["usageMetadata"] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": output,
                "totalTokenCount": prompt + output,
            }
        return chunk

    def _key_error(self, key: str) -> web.Response:
        if self.key_error_status == 400:
            reason = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ]
            return self._error(400, "API key not valid. Please pass a valid API key.", key, reason)
        return self._error(self.key_error_status, "Permission denied.", key)

    def _error(
        self, status: int, message: str, key: str, details: list[Any] | None = None
    ) -> web.Response:
        if self.echo_key:
            message = f"{message} (key {key})"
        error = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
        if details:
            error["details"] = details
        return web.json_response({"error": error}, status=status)


@asynccontextmanager
async def running(fake: FakeGemini) -> AsyncIterator[FakeGemini]:
    """Serve ``fake`` for the duration of the block, with its ``base_url`` filled in."""
    async with serve(fake.app()) as base_url:
        fake.base_url = base_url
        yield fake
