"""One adapter for every OpenAI-compatible chat API: OpenAI, Ollama, vLLM, llama.cpp, LM Studio.

It streams ``POST {base_url}/chat/completions`` and reads the server-sent events itself, which
keeps it to the part of the protocol all of those servers share. Failures become
:class:`LLMError` at once, without retries: the fallback chain decides what to do next. Error
messages carry the HTTP status or the exception's kind only, never the response body, which
some servers fill with the key they were sent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp

from nexy.components import READY, ComponentStatus, State
from nexy.config import OpenAISettings
from nexy.providers.llm.base import LLMError, LLMRequest, with_facts
from nexy.providers.prerequisites import openai_key

# Backstops only (the fallback chain enforces the real deadlines): a host that never answers
# the connection, or a stream that stalls for good, must not pin a connection forever.
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=60.0)
_DONE = "[DONE]"


def _status_error(status: int) -> LLMError:
    """A short LLMError for an HTTP error status (the body is not read: it may echo the key)."""
    if status in (401, 403):
        reason = "refused the API key"
    elif status == 404:
        reason = "has no such model or endpoint"
    elif status == 429:
        reason = "is rate-limited or out of quota"
    elif status >= 500:
        reason = "had a server error"
    else:
        reason = "rejected the request"
    return LLMError(f"openai {reason} (HTTP {status})")


def _user_content(request: LLMRequest) -> str | list[dict[str, Any]]:
    """The user message: plain text, or text plus the screenshot as a data URL."""
    if request.image is None:
        return request.user
    encoded = base64.b64encode(request.image.data).decode("ascii")
    url = f"data:{request.image.mime_type};base64,{encoded}"
    return [
        {"type": "text", "text": request.user},
        {"type": "image_url", "image_url": {"url": url}},
    ]


def _usage(event: dict[str, Any]) -> tuple[int, int] | None:
    """(prompt, completion) tokens if ``event`` reports usage (only the last one does)."""
    usage = event.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


class _EventReader:
    """The ``data`` of each server-sent event in a response body, one event at a time."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content

    async def next(self) -> str | None:
        """The next event's data, None at the end of the body."""
        data: list[str] = []
        while line := await self._content.readline():
            text = line.decode("utf-8").rstrip("\r\n")
            if not text:  # a blank line ends an event
                if data:
                    return "\n".join(data)
                continue
            field, _, value = text.partition(":")
            # Other fields (event, id, retry) and ": comment" keep-alives carry nothing here.
            if field == "data":
                data.append(value.removeprefix(" "))
        return "\n".join(data) if data else None


class _Reply:
    """One streamed completion, read event by event until the next piece of text."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._events = _EventReader(response.content)
        self.usage: tuple[int, int] | None = None
        self.finished = False  # a choice reported its finish_reason
        self.done = False  # the [DONE] marker arrived

    async def next_text(self) -> str | None:
        """The next non-empty text fragment, None once the reply is complete."""
        try:
            while (data := await self._events.next()) is not None:
                if data.strip() == _DONE:
                    self.done = True
                    return None
                if text := self._take(json.loads(data)):
                    return text
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise LLMError(f"openai stream broke: {type(exc).__name__}") from None
        except ValueError:  # undecodable bytes, bad JSON, an overlong line
            raise LLMError("openai sent a malformed event") from None
        if not self.finished:  # the body ended without [DONE] or a finish_reason
            raise LLMError("openai stream ended early")
        return None

    def _take(self, event: Any) -> str:
        """Record what ``event`` reports and return its text (may be empty)."""
        if not isinstance(event, dict):
            raise ValueError("event is not an object")
        if "error" in event:  # servers report failures after the 200 status as an event
            raise LLMError("openai stream reported an error")
        self.usage = _usage(event) or self.usage
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise ValueError("choices is not a list")
        if not choices or not isinstance(choices[0], dict):
            return ""  # the usage chunk has no choices
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finished = True
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        return content if isinstance(content, str) else ""


class OpenAICompatLLM:
    """Streaming replies from any server that speaks OpenAI's chat completions API.

    Token counts from the stream's final usage chunk go to the request's ``meter``.
    """

    name = "openai"
    supports_images = True

    def __init__(self, settings: OpenAISettings) -> None:
        self._settings = settings
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._headers: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._status = ComponentStatus(State.DOWN, "not started")

    async def start(self) -> None:
        """Resolve the key and open the HTTP session (no request is made)."""
        if self._session is not None:
            return
        settings = self._settings
        try:
            key = openai_key(settings)  # the same check as `config check`
        except ValueError as exc:
            self._status = ComponentStatus(State.DOWN, str(exc))
            raise LLMError(str(exc)) from None
        # No key, no header: local servers such as Ollama need none.
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._headers.update(settings.headers)
        self._session = aiohttp.ClientSession(timeout=_TIMEOUT, trust_env=True)
        self._status = READY

    def status(self) -> ComponentStatus:
        """READY once started, DOWN with the reason otherwise."""
        return self._status

    async def close(self) -> None:
        """Close the HTTP session and its connections (idempotent)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        self._status = ComponentStatus(State.DOWN, "closed")

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        """Stream the reply to ``request``, the screenshot included when there is one."""
        response = await self._post(self._body(request))
        reply = _Reply(response)
        try:
            while (text := await reply.next_text()) is not None:
                yield text
        finally:
            if reply.usage is not None:
                request.meter.add(*reply.usage, model=self._settings.model)
            if reply.done:
                response.release()  # complete: the connection may serve the next request
            else:
                # Cut short (barge-in, cancellation, error): closing the connection is what
                # tells the server to stop generating.
                response.close()

    async def _post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        """Send the request; a response that is not 200 becomes an LLMError."""
        if self._session is None:
            raise LLMError("openai is not started")
        try:
            response = await self._session.post(self._url, json=body, headers=self._headers)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise LLMError(f"openai is unreachable: {type(exc).__name__}") from None
        if response.status != 200:
            response.close()
            raise _status_error(response.status)
        return response

    def _body(self, request: LLMRequest) -> dict[str, Any]:
        settings = self._settings
        messages: list[dict[str, Any]] = []
        system = with_facts(request.system, request.memory.facts)
        if system:
            messages.append({"role": "system", "content": system})
        # Earlier exchanges as real turns: the model answers the last one instead of
        # continuing a transcript.
        for item in request.memory.history:
            messages.append({"role": "user", "content": item.user})
            messages.append({"role": "assistant", "content": item.assistant})
        messages.append({"role": "user", "content": _user_content(request)})
        return {
            "model": settings.model,
            "stream": True,
            "messages": messages,
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            "stream_options": {"include_usage": True},
        }
