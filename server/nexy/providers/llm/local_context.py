"""What the local model reads for one turn: chat messages within its context, then tokens.

The messages are the fixed system prompt (then the user's newest facts that fit), the newest
recent exchanges in the request's language within their own token budget, and the user's words.
They are rendered with the model's own chat template, so the tokens are known before generation
and ``kv_reuse`` can line the evaluated context up with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from nexy.config import LocalLLMSettings
from nexy.providers.llm.base import Exchange, LLMError, LLMRequest, with_facts
from nexy.providers.tts.voices import detect_language

_TEMPLATE_TOKENS = 32  # room for the chat template's role markers around the two messages
_EXCHANGE_TEMPLATE_TOKENS = 10  # the role markers around one earlier exchange
# For a GGUF without a template of its own (a model_path the operator chose).
_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

Messages = list[llama_cpp.ChatCompletionRequestMessage]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A turn's prompt as the model's tokens, and the template's own stop strings."""

    tokens: list[int]
    stop: list[str]


class LocalContext:
    """Builds one model's prompts; used on the model's worker thread only."""

    def __init__(self, model: llama_cpp.Llama, system: str, settings: LocalLLMSettings) -> None:
        self._model = model
        self._system = system
        self._settings = settings
        eos, bos = model.token_eos(), model.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=str(model.metadata.get("tokenizer.chat_template") or _CHATML),
            eos_token=self._token_text(eos),
            bos_token=self._token_text(bos),
            stop_token_ids=[eos],
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._model.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def prompt(self, messages: Messages) -> Prompt:
        """``messages`` rendered by the chat template and tokenized as llama.cpp would."""
        rendered = self._formatter(messages=messages)
        tokens = self._model.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or ""]
        return Prompt(tokens, [s for s in stop if s])

    def count(self, text: str) -> int:
        return len(self._model.tokenize(text.encode(), add_bos=False))

    def messages(self, request: LLMRequest) -> Messages:
        """The messages for ``request`` within the context: the user's words first, then
        recent exchanges (their own budget), then the newest facts that still fit."""
        model, count = self._model, self.count
        room = model.n_ctx() - self._settings.max_tokens - count(self._system) - _TEMPLATE_TOKENS
        if room <= 0:
            raise LLMError("local model context is too small for its system prompt")
        tokens = model.tokenize(request.user.encode(), add_bos=False)
        user = request.user
        if len(tokens) > room:  # keep the tail, where the question is
            user = model.detokenize(tokens[-room:]).decode("utf-8", errors="ignore")
        room -= min(len(tokens), room)
        history = newest_exchanges(request, count, min(room, self._settings.history_tokens))
        room -= sum(exchange_cost(item, count) for item in history)
        facts = list(request.memory.facts)
        while facts and count(with_facts("", tuple(facts))) > room:
            facts.pop(0)  # the oldest fact goes first
        return chat_messages(with_facts(self._system, tuple(facts)), history, user)


def newest_exchanges(
    request: LLMRequest, count: Callable[[str], int], budget: int
) -> list[Exchange]:
    """The newest whole exchanges in the request's language within ``budget`` tokens.

    The model speaks English only, so an exchange in another script would only pull it into
    that language. As the window slides, ``kv_reuse`` keeps the evaluated exchanges still shown.
    """
    language = detect_language(request.prompt)
    chosen: list[Exchange] = []
    total = 0
    for item in reversed(request.memory.history):
        if detect_language(f"{item.user} {item.assistant}", language) != language:
            continue
        cost = exchange_cost(item, count)
        if total + cost > budget:
            break
        chosen.insert(0, item)
        total += cost
    return chosen


def exchange_cost(item: Exchange, count: Callable[[str], int]) -> int:
    return count(item.user) + count(item.assistant) + _EXCHANGE_TEMPLATE_TOKENS


def chat_messages(system: str, history: list[Exchange], user: str) -> Messages:
    messages: Messages = [
        llama_cpp.ChatCompletionRequestSystemMessage(role="system", content=system)
    ]
    for item in history:
        messages.append(llama_cpp.ChatCompletionRequestUserMessage(role="user", content=item.user))
        messages.append(
            llama_cpp.ChatCompletionRequestAssistantMessage(
                role="assistant", content=item.assistant
            )
        )
    messages.append(llama_cpp.ChatCompletionRequestUserMessage(role="user", content=user))
    return messages
