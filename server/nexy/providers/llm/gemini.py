"""Gemini through Google's ``google-genai`` SDK, streamed as server-sent events.

Failures are reported at once as :class:`LLMError`: the SDK's own retries are switched off
because the fallback chain, not this provider, decides what happens after a quota error or an
outage. The one exception is a refused API key, which is retried a single time with the backup
key before any text has been streamed; the key that worked is used first from then on.

Each reply is read by a task of its own. The SDK stacks several async generators over the HTTP
response, and closing only the outermost one leaves the connection open until garbage
collection; cancelling the task unwinds all of them at once, which closes the connection, so a
barge-in stops the upstream generation straight away.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator

import aiohttp
from google import genai
from google.genai import errors, types

from nexy.components import READY, ComponentStatus, State
from nexy.config import GeminiSettings
from nexy.providers.llm.base import LLMError, LLMRequest, with_facts
from nexy.providers.prerequisites import gemini_keys

log = logging.getLogger(__name__)

_API_VERSION = "v1beta"
_Item = types.GenerateContentResponse | Exception | None


class _KeyRefused(Exception):
    """Google refused the API key before any text was streamed."""


def _key_refused(exc: errors.APIError) -> bool:
    """Whether Google refused the key itself (not the request, quota or model)."""
    if exc.code in (401, 403):
        return True
    # An unknown or revoked key is a 400 INVALID_ARGUMENT whose details say API_KEY_INVALID.
    return exc.code == 400 and "API_KEY_INVALID" in json.dumps(exc.details, default=str)


def _translate(exc: Exception) -> LLMError:
    """A short LLMError for ``exc``: status and kind only, never the body, URL or key."""
    if isinstance(exc, errors.APIError):
        status = f" {exc.status}" if isinstance(exc.status, str) else ""
        return LLMError(f"gemini request failed: HTTP {exc.code}{status}")
    if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
        return LLMError(f"gemini is unreachable: {type(exc).__name__}")
    if isinstance(exc, errors.UnknownApiResponseError):
        return LLMError("gemini sent a malformed event")
    return LLMError(f"gemini failed: {type(exc).__name__}")


def _contents(request: LLMRequest) -> list[types.Content]:
    """Earlier exchanges as user/model turns, then this message and the screenshot if any."""
    contents: list[types.Content] = []
    for item in request.memory.history:
        contents.append(types.Content(role="user", parts=[types.Part.from_text(text=item.user)]))
        contents.append(
            types.Content(role="model", parts=[types.Part.from_text(text=item.assistant)])
        )
    parts = [types.Part.from_text(text=request.user)]
    if request.image is not None:
        image = request.image
        parts.append(types.Part.from_bytes(data=image.data, mime_type=image.mime_type))
    contents.append(types.Content(role="user", parts=parts))
    return contents


def _text(chunk: types.GenerateContentResponse) -> str:
    """The answer text in ``chunk``, leaving out any thought summaries."""
    if not chunk.candidates or chunk.candidates[0].content is None:
        return ""
    parts = chunk.candidates[0].content.parts or []
    return "".join(part.text for part in parts if part.text and not part.thought)


def _usage(chunk: types.GenerateContentResponse) -> tuple[int, int] | None:
    """(prompt, output) tokens from ``chunk``; thinking counts as output, as it is billed so."""
    meta = chunk.usage_metadata
    if meta is None:
        return None
    output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return meta.prompt_token_count or 0, output


_MAX_CHUNKS_WITHOUT_LIMIT = 65_536  # only if a config ever omits max_output_tokens


class _Pump:
    """One SDK stream read by its own task, so cancelling it closes the connection at once."""

    def __init__(
        self,
        client: genai.Client,
        model: str,
        contents: list[types.Content],
        config: types.GenerateContentConfig,
    ) -> None:
        # Every chunk carries at least one token, so a reply never holds more chunks than
        # max_output_tokens: with room for those, a few metadata-only chunks and the end marker,
        # put_nowait (see _run) can never overflow, and the bound is explicit.
        tokens = config.max_output_tokens or _MAX_CHUNKS_WITHOUT_LIMIT
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=tokens + 16)
        self._task = asyncio.create_task(self._run(client, model, contents, config))

    async def _run(
        self,
        client: genai.Client,
        model: str,
        contents: list[types.Content],
        config: types.GenerateContentConfig,
    ) -> None:
        try:
            chunks = await client.aio.models.generate_content_stream(
                model=model, contents=contents, config=config
            )
            async for chunk in chunks:
                # Never `await put()`: the task must only ever wait inside the SDK, where a
                # cancel unwinds its generators and closes the response. Cancelled while waiting
                # for queue room it would leave them suspended (aclose() on the outermost does
                # not reach the inner ones) and the upstream would keep generating. A reply is
                # at most max_output_tokens, which the queue's size is set from.
                self._queue.put_nowait(chunk)
        except Exception as exc:  # handed to the reader, which translates it
            self._queue.put_nowait(exc)
        else:
            self._queue.put_nowait(None)

    async def next(self) -> types.GenerateContentResponse | None:
        """The next chunk, None at the end; raises the SDK's exception if the stream failed."""
        item = await self._queue.get()
        if isinstance(item, Exception):
            raise item
        return item

    async def close(self) -> None:
        """Stop reading and close the HTTP response (a no-op once the stream has ended)."""
        self._task.cancel()
        # wait() rather than awaiting the task: its CancelledError must not look like ours.
        await asyncio.wait([self._task])


class GeminiLLM:
    """Streaming replies from Gemini, with a backup key for a refused first one.

    Token counts from the stream's usage metadata go to the request's ``meter``.
    """

    name = "gemini"
    supports_images = True

    def __init__(self, settings: GeminiSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._clients: list[genai.Client] = []  # one per key, the configured key first
        self._active = 0  # index of the key that worked last
        self._status = ComponentStatus(State.DOWN, "not started")

    async def start(self) -> None:
        """Resolve the keys and build the clients (no request is made)."""
        if self._clients:
            return
        try:
            keys = self._keys()
        except LLMError as exc:
            self._status = ComponentStatus(State.DOWN, str(exc))
            raise
        # One session for both keys, owned here so close() really frees its connections.
        self._session = aiohttp.ClientSession(trust_env=True)
        self._clients = [self._client(key, self._session) for key in keys]
        self._active = 0
        self._status = READY

    def status(self) -> ComponentStatus:
        """READY once started, DOWN with the reason otherwise."""
        return self._status

    async def close(self) -> None:
        """Close the clients and their connections (idempotent)."""
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aio.aclose()
            client.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._status = ComponentStatus(State.DOWN, "closed")

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        """Stream Gemini's reply to ``request``, the screenshot included when there is one."""
        if not self._clients:
            raise LLMError("gemini is not started")
        contents, config = _contents(request), self._config(request)
        order = [self._active, *(i for i in range(len(self._clients)) if i != self._active)]
        usage: tuple[int, int] | None = None
        try:
            for attempt, index in enumerate(order, start=1):
                pump = _Pump(self._clients[index], self._settings.model, contents, config)
                try:
                    started = False
                    while (chunk := await self._next(pump, refusable=not started)) is not None:
                        usage = _usage(chunk) or usage
                        if text := _text(chunk):
                            started = True
                            yield text
                    self._active = index
                    return
                except _KeyRefused:
                    log.warning("gemini refused API key %d of %d", index + 1, len(order))
                    if attempt == len(order):
                        raise LLMError("gemini refused the API key") from None
                finally:
                    await pump.close()
        finally:
            if usage is not None:
                request.meter.add(*usage, model=self._settings.model)

    async def _next(self, pump: _Pump, *, refusable: bool) -> types.GenerateContentResponse | None:
        """The pump's next chunk with SDK errors translated; a refused key may be retried."""
        try:
            return await pump.next()
        except errors.APIError as exc:
            if refusable and _key_refused(exc):
                raise _KeyRefused from None
            raise _translate(exc) from None
        except Exception as exc:  # the provider boundary: every other failure is an LLMError
            raise _translate(exc) from None

    def _keys(self) -> list[str]:
        try:
            return gemini_keys(self._settings)  # the same check as `config check`
        except ValueError as exc:
            raise LLMError(str(exc)) from None

    def _client(self, key: str, session: aiohttp.ClientSession) -> genai.Client:
        options = types.HttpOptions(
            base_url=self._settings.base_url or None,
            # Pinned: this SDK defaults to v1 and GOOGLE_GENAI_API_VERSION would override that.
            api_version=_API_VERSION,
            # With retry options set the SDK neither retries 429/5xx nor quietly sleeps 1-10 s
            # and reconnects after a connection error: both are the fallback chain's job.
            retry_options=types.HttpRetryOptions(attempts=1),
            aiohttp_client=session,
        )
        # vertexai=False: a GOOGLE_GENAI_USE_VERTEXAI in the environment must not reroute us.
        return genai.Client(vertexai=False, api_key=key, http_options=options)

    def _config(self, request: LLMRequest) -> types.GenerateContentConfig:
        settings = self._settings
        budget = settings.thinking_budget
        thinking = None if budget is None else types.ThinkingConfig(thinking_budget=budget)
        return types.GenerateContentConfig(
            system_instruction=with_facts(request.system, request.memory.facts) or None,
            temperature=settings.temperature,
            max_output_tokens=settings.max_output_tokens,
            # Thinking happens before the first word, so every token of it delays first audio.
            thinking_config=thinking,
            # No tools are declared, and a stream that breaks must fail rather than re-request.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            automatic_continuation=False,
        )
