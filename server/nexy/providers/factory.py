"""Provider selection from settings: the one place a configured name becomes an engine.

The configured provider and its fallbacks become one chain (timeouts, circuit breakers,
invisible hand-over before any output); the local intent path sits in front of the LLM chain,
so instant answers are never subject to a model's timeouts.
"""

from __future__ import annotations

from nexy.config import Settings
from nexy.memory.hooks import MemoryHooks
from nexy.providers.llm.base import LLMProvider
from nexy.providers.llm.chain import FallbackLLM
from nexy.providers.llm.gemini import GeminiLLM
from nexy.providers.llm.intent import IntentFirstLLM
from nexy.providers.llm.local import LocalLLM
from nexy.providers.llm.openai_compat import OpenAICompatLLM
from nexy.providers.llm.scripted import ScriptedLLM
from nexy.providers.tts.base import TTSProvider
from nexy.providers.tts.chain import FallbackTTS
from nexy.providers.tts.edge import EdgeTTS
from nexy.providers.tts.espeak import EspeakTTS
from nexy.providers.tts.piper import PiperTTS
from nexy.providers.tts.router import LanguageRouterTTS
from nexy.providers.tts.scripted import ScriptedTTS
from nexy.turn.intents import IntentMatcher


def build_llm_chain(settings: Settings) -> FallbackLLM:
    """The configured model and its fallbacks as one chain (timeouts, breakers, hand-over)."""
    llm = settings.llm
    names = list(dict.fromkeys([llm.provider, *llm.fallbacks]))  # each member once, in order
    return FallbackLLM([_llm(name, settings) for name in names], llm.timeouts, llm.breaker)


def with_intents(model: LLMProvider, settings: Settings, memory: MemoryHooks) -> LLMProvider:
    """The local intent path in front of the model, when intents are on."""
    intents = settings.llm.intents
    if not intents.enabled:
        return model
    return IntentFirstLLM(model, IntentMatcher(memory, timezone=intents.timezone))


def can_analyse_memory(settings: Settings) -> bool:
    """Whether the answering model can extract facts as JSON (the embedded one cannot)."""
    return settings.llm.provider in ("gemini", "openai")


def _llm(name: str, settings: Settings) -> LLMProvider:
    llm = settings.llm
    if name == "scripted":
        return ScriptedLLM(llm.scripted)
    if name == "gemini":
        return GeminiLLM(llm.gemini)
    if name == "openai":
        return OpenAICompatLLM(llm.openai)
    return LocalLLM(llm.local)


def build_tts(settings: Settings) -> TTSProvider:
    """The configured speech chain, e.g. edge → auto (Piper/eSpeak)."""
    tts = settings.tts
    names = list(dict.fromkeys([tts.provider, *tts.fallbacks]))
    if "auto" in names:
        # "auto" already holds Piper and eSpeak; a second instance of either would start twice.
        cut = names.index("auto")
        names = names[: cut + 1] + [n for n in names[cut + 1 :] if n not in ("piper", "espeak")]
    return FallbackTTS([_tts(name, settings) for name in names], tts.timeouts, tts.breaker)


def _tts(name: str, settings: Settings) -> TTSProvider:
    tts = settings.tts
    if name == "scripted":
        return ScriptedTTS(tts.scripted)
    if name == "edge":
        return EdgeTTS(tts.edge)
    if name == "piper":
        return PiperTTS(tts.piper)
    espeak = EspeakTTS(
        voices=tts.espeak.voices,
        default_voice=tts.espeak.default_voice,
        rate_wpm=tts.espeak.rate_wpm,
    )
    if name == "espeak":
        return espeak
    piper = PiperTTS(tts.piper)
    return LanguageRouterTTS({language: piper for language in tts.piper.languages}, espeak)
