"""Provider selection from settings: the one place a configured name becomes an engine."""

from __future__ import annotations

from nexy.config import Settings
from nexy.memory.hooks import MemoryHooks
from nexy.providers.llm.base import LLMProvider
from nexy.providers.llm.intent import IntentFirstLLM
from nexy.providers.llm.local import LocalLLM
from nexy.providers.llm.scripted import ScriptedLLM
from nexy.providers.tts.base import TTSProvider
from nexy.providers.tts.espeak import EspeakTTS
from nexy.providers.tts.piper import PiperTTS
from nexy.providers.tts.router import LanguageRouterTTS
from nexy.providers.tts.scripted import ScriptedTTS
from nexy.turn.intents import IntentMatcher


def build_llm(settings: Settings, memory: MemoryHooks) -> LLMProvider:
    """The configured model, behind the local intent path when intents are on."""
    llm = settings.llm
    model: LLMProvider = (
        ScriptedLLM(llm.scripted) if llm.provider == "scripted" else LocalLLM(llm.local)
    )
    if not llm.intents.enabled:
        return model
    return IntentFirstLLM(model, IntentMatcher(memory, timezone=llm.intents.timezone))


def build_tts(settings: Settings) -> TTSProvider:
    tts = settings.tts
    if tts.provider == "scripted":
        return ScriptedTTS(tts.scripted)
    espeak = EspeakTTS(
        voices=tts.espeak.voices,
        default_voice=tts.espeak.default_voice,
        rate_wpm=tts.espeak.rate_wpm,
    )
    if tts.provider == "espeak":
        return espeak
    piper = PiperTTS(tts.piper)
    if tts.provider == "piper":
        return piper
    return LanguageRouterTTS({language: piper for language in tts.piper.languages}, espeak)
