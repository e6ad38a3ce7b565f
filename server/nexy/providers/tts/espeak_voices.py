"""The voices eSpeak NG really has, and the resolution of voice names against them.

eSpeak NG copies a voice name into fixed-size C buffers (a variant name of 37+ characters
overflows one and aborts the process), so no name reaches the library unless it is one of the
names listed here: a voice the library itself reports, optionally with a "+variant" whose file
exists in the data folder.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nexy.providers.tts.voices import MAX_VOICE_CHARS, language_key


class _VoiceStruct(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated tag) pairs, then 0
        ("identifier", ctypes.c_char_p),  # the voice file's path under espeak-ng-data
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True, slots=True)
class EspeakVoices:
    """Lower-cased accepted names mapped to the short voice name handed to the library."""

    names: Mapping[str, str]  # "en-us", "gmw/en-us", "english (america)" -> "en-us"
    languages: Mapping[str, str]  # language tag -> its preferred voice ("pt-br" -> "pt-br")
    variants: Mapping[str, str]  # "f3" -> "f3", as named in espeak-ng-data/voices/!v

    def resolve(self, name: str) -> str | None:
        """The library's name for voice ``name`` ("EN-US+F3" -> "en-us+f3"); None if unknown."""
        if len(name) > MAX_VOICE_CHARS:
            return None
        base, plus, variant = name.strip().lower().partition("+")
        voice = self.names.get(base) or self.languages.get(base)  # "en-gb" names a voice too
        if voice is None or not plus:
            return voice
        known_variant = self.variants.get(variant)
        return f"{voice}+{known_variant}" if known_variant else None

    def for_language(self, language: str) -> str | None:
        """eSpeak's own preferred voice for a language tag, if it has one."""
        return self.languages.get(language_key(language))


def list_voices(lib: ctypes.CDLL, data: Path) -> EspeakVoices:
    """Worker: the voices of an initialised library and the variants in its data folder."""
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
    listed = lib.espeak_ListVoices(None)
    names: dict[str, str] = {}
    ranked: dict[str, tuple[int, int, str]] = {}  # tag -> (priority, list position, voice)
    aliases: list[tuple[str, str]] = []
    for position in range(10_000):  # the list is NULL-terminated; the bound is only a guard
        if not listed or not listed[position]:
            break
        entry = listed[position].contents
        identifier = _text(entry.identifier).lower()
        voice = identifier.rsplit("/", 1)[-1]
        if not voice:
            continue
        names.setdefault(voice, voice)
        aliases += [(identifier, voice), (_text(entry.name).lower(), voice)]
        for priority, tag in _languages(entry.languages):
            ranked[tag] = min(
                ranked.get(tag, (priority, position, voice)), (priority, position, voice)
            )
    for alias, voice in aliases:  # file names win over display names that happen to clash
        names.setdefault(alias, voice)
    variants_dir = data / "voices" / "!v"
    variants = {
        path.name.lower(): path.name
        for path in (variants_dir.iterdir() if variants_dir.is_dir() else ())
        if path.is_file() and "+" not in path.name and len(path.name) <= MAX_VOICE_CHARS
    }
    languages = {tag: voice for tag, (_, _, voice) in ranked.items()}
    return EspeakVoices(names, languages, variants)


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _languages(address: int | None) -> list[tuple[int, str]]:
    """Decode an ``espeak_VOICE.languages`` list into (priority, normalised tag) pairs."""
    pairs: list[tuple[int, str]] = []
    while address:
        priority = ctypes.string_at(address, 1)[0]
        if priority == 0:
            break
        tag = ctypes.string_at(address + 1)
        pairs.append((priority, language_key(tag.decode("ascii", "replace"))))
        address += len(tag) + 2
    return [(priority, tag) for priority, tag in pairs if tag]
