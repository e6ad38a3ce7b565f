"""Opening and closing apps, with the names users say mapped to the real macOS app names.

"открой сафари", "open safari" and "запусти хром" all reach the client as the app's own name
("Safari", "Google Chrome"): the client launches apps by name, and a Russian or lower-case
name would not be found. An unknown name keeps the user's words.
"""

from __future__ import annotations

import re

from nexy.turn.intent_base import IntentReply, Said, first_group
from nexy.turn.intent_phrases import (
    _CAUTIOUS_VERBS,
    _CLOSE,
    _CONNECTORS,
    _MAX_APP_CHARS,
    _MAX_APP_WORDS,
    _NOT_APPS,
    _OPEN,
)

_ALIASES: dict[str, tuple[str, ...]] = {
    "Safari": ("safari", "сафари"),
    "Google Chrome": ("chrome", "google chrome", "хром", "гугл хром", "хроме"),
    "Firefox": ("firefox", "файрфокс", "фаерфокс", "мозилла", "mozilla firefox"),
    "Telegram": ("telegram", "телеграм", "телеграмм", "телеграмма", "телегу", "телега"),
    "WhatsApp": ("whatsapp", "whats app", "ватсап", "вотсап", "ватсапп", "вацап"),
    "Slack": ("slack", "слак", "слэк"),
    "zoom.us": ("zoom", "зум"),
    "Spotify": ("spotify", "спотифай", "спотифи"),
    "Music": ("music", "apple music", "музыка", "музыку"),
    "Mail": ("mail", "apple mail", "почта", "почту"),
    "Notes": ("notes", "заметки"),
    "Calendar": ("calendar", "календарь"),
    "Calculator": ("calculator", "калькулятор"),
    "Finder": ("finder", "финдер", "файндер"),
    "Terminal": ("terminal", "терминал"),
    "System Settings": (
        "settings", "system settings", "system preferences", "настройки", "системные настройки",
    ),
    "Skype": ("skype", "скайп"),
    "Discord": ("discord", "дискорд"),
    "Microsoft Teams": ("teams", "microsoft teams", "тимс"),
    "Microsoft Word": ("word", "microsoft word", "ворд"),
    "Microsoft Excel": ("excel", "microsoft excel", "эксель"),
    "Visual Studio Code": ("vs code", "vscode", "visual studio code", "вс код", "вскод"),
    "Xcode": ("xcode", "икскод"),
    "Messages": ("messages", "imessage"),
    "Photos": ("photos", "фото", "фотографии"),
    "Maps": ("maps", "карты"),
    "App Store": ("app store", "appstore", "апстор", "эпп стор", "апп стор"),
    "FaceTime": ("facetime", "фейстайм"),
    "Preview": ("preview",),
    "TextEdit": ("textedit", "text edit"),
    "Notion": ("notion", "ноушн"),
    "Figma": ("figma", "фигма"),
    "Adobe Photoshop": ("photoshop", "adobe photoshop", "фотошоп"),
}  # fmt: skip
_CANONICAL = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
# What is said back when the app's real name reads badly aloud.
_SPOKEN = {"zoom.us": "Zoom"}


def canonical_app(name: str) -> str:
    """The real app name for what the user said; unknown lower-case names are title-cased."""
    known = _CANONICAL.get(" ".join(name.casefold().replace("ё", "е").split()))
    if known is not None:
        return known
    return name.title() if name == name.lower() else name


def match_app(said: Said, start: int, end: int) -> IntentReply | None:
    """ "open Safari" / "закрой телеграм" as open_app / close_app, or None."""
    for pattern, command, kind in ((_OPEN, "open_app", "open"), (_CLOSE, "close_app", "close")):
        match = pattern.fullmatch(said.key, start, end)
        if match is None:
            continue
        name = _app_name(said, match)
        if name is None:
            return None
        spoken = _SPOKEN.get(name, name)
        return IntentReply(said.text(kind).format(app=spoken), command, {"app_name": name})
    return None


def _app_name(said: Said, match: re.Match[str]) -> str | None:
    """The app the user named, or None if it does not look like an app."""
    group = first_group(match, "app", "app2")
    words = match.group(group).casefold().split()
    if not words or len(words) > _MAX_APP_WORDS or len(match.group(group)) > _MAX_APP_CHARS:
        return None
    if words[0] in _NOT_APPS or any(word in _CONNECTORS for word in words):
        return None
    name = said.raw_group(match, group).strip("\"'«»“”.")
    if not name:
        return None
    verb = " ".join((match.groupdict().get("verb") or match.groupdict().get("verb2") or "").split())
    if verb.lower() in _CAUTIOUS_VERBS:
        said_app = match.end(group) < match.end() or match.groupdict().get("kind") is not None
        looks_named = name[0].isupper() or (said.ru and name.isascii())
        if not (said_app or looks_named or " ".join(words) in _CANONICAL):
            return None
    return canonical_app(name)
