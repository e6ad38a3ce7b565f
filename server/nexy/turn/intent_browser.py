"""The browser: opening a site, searching the web and closing the browser, in English and Russian.

A site needs a dot and a known top-level domain ("youtube.com") or the word "website"/"сайт",
so "open Safari" and "open Notes.app" stay app requests. The task handed to the client's browser
agent is a clean imperative: the follow-up after the site ("… and search for OpenAI"), or the
request itself with politeness set aside.
"""

from __future__ import annotations

import re

from nexy.turn.intent_base import IntentReply, Said
from nexy.turn.intent_phrases import _words

_I = re.IGNORECASE
_TLD = r"com|net|org|io|ai|dev|co|me|tv|info|edu|gov|ru|uk|de|fr|es|it|nl|eu|us|ca|au|jp|in|рф|su"
_URL = rf"(?P<url>(?:https?://)?(?:[a-zа-я0-9-]+\.)+(?:{_TLD})(?:/\S*)?)"
_AND = r"(?:\s+(?:and|и|а\s+потом|and\s+then)\s+(?P<task>.+))?"
_OPEN_VERB = r"(?:open|go\s+to|visit|navigate\s+to|browse\s+to|load|take\s+me\s+to|pull\s+up)"
_RU_OPEN_VERB = (
    r"(?:открой(?:те)?|открыть|(?:зайди|перейди|иди|зайдите|перейдите)\s+на|загрузи(?:те)?)"
)
_SITE = r"(?:web\s*site|site|web\s+page|homepage|сайт)"
_OPEN_URL = (
    re.compile(rf"{_OPEN_VERB}\s+(?:the\s+)?(?:{_SITE}\s+)?{_URL}(?:\s+{_SITE})?{_AND}", _I),
    re.compile(rf"{_RU_OPEN_VERB}(?:\s+(?:сайт|страницу))?\s+{_URL}{_AND}", _I),
)
_OPEN_SITE = (
    re.compile(rf"{_OPEN_VERB}\s+(?:the\s+)?(?P<name>.+?)\s+{_SITE}", _I),
    re.compile(rf"{_OPEN_VERB}\s+(?:the\s+)?{_SITE}\s+(?:of\s+)?(?P<name>.+)", _I),
    re.compile(rf"{_RU_OPEN_VERB}\s+сайт\s+(?P<name>.+)", _I),
)
_WEB = r"(?:the\s+)?(?:web|internet)"
_WHERE = r"(?:в\s+(?:интернете|сети|гугле|google|яндексе)|онлайн)"
_SEARCH = (
    re.compile(rf"(?:search|look)\s+(?:{_WEB}|online|on\s+{_WEB}|google)\s+for\s+(?P<q>.+)", _I),
    re.compile(
        rf"(?:search(?:\s+for)?|look\s+up)\s+(?P<q>.+?)\s+(?:online|on\s+{_WEB}|on\s+google)", _I
    ),
    re.compile(r"(?:google|web\s+search)\s+(?P<q>.+)", _I),
    re.compile(
        rf"(?:(?:найди|поищи|ищи|посмотри)(?:те)?|найти|поискать|посмотреть)\s+{_WHERE}\s+(?P<q>.+)",
        _I,
    ),
    re.compile(
        rf"(?:(?:найди|поищи|посмотри)(?:те)?|найти|поискать|посмотреть)\s+(?P<q>.+?)\s+{_WHERE}",
        _I,
    ),
    re.compile(r"(?:(?:загугли|погугли)(?:те)?|загуглить|погуглить)\s+(?P<q>.+)", _I),
)
_CLOSE = re.compile(
    r"(?:close|quit|exit|shut\s+down)\s+(?:all\s+(?:of\s+)?)?(?:the\s+|my\s+)?(?:web\s+)?browser"
    r"(?:\s+windows?)?"
    r"|(?:закрой(?:те)?|закрыть|выйди\s+из)\s+(?:(?:все\s+)?(?:окно|окна)\s+)?браузер[аы]?",
    _I,
)
# Not a site name ("open this website") and not a search ("google chrome" is the app).
_VAGUE = _words("a an this that my your our it any some the этот эту мой твой")
_NOT_QUERIES = _words("chrome docs drive maps хром it this that это")
_MAX_SITE_WORDS = 4
_TEXTS = {
    "site": ("Opening {site}.", "Открываю {site}."),
    "browse": ("Opening it in the browser.", "Открываю в браузере."),
    "search": ("Searching the web for {q}.", "Ищу в интернете: {q}."),
    "search_task": ("search the web for {q}", "найди в интернете {q}"),
    "close": ("Closing the browser.", "Закрываю браузер."),
}


def match_browser(said: Said, start: int, end: int) -> IntentReply | None:
    """A close-browser, open-site or web-search request, or None."""
    if _CLOSE.fullmatch(said.key, start, end):
        return IntentReply(_TEXTS["close"][said.ru], "close_browser", {})
    return _open_url(said, start, end) or _search(said, start, end) or _site(said, start, end)


def _open_url(said: Said, start: int, end: int) -> IntentReply | None:
    key = said.with_colons()  # "https://" keeps its colon
    for pattern in _OPEN_URL:
        match = pattern.fullmatch(key, start, end)
        if match is None:
            continue
        site = said.raw_group(match, "url")
        scheme, _, rest = site.rpartition("://")
        host, slash, path = rest.partition("/")
        url = f"{(scheme or 'https').lower()}://{host.lower()}{slash}{path}"
        task = _clean(said.raw_group(match, "task")) if match.group("task") else ""
        task = task or _clean(said.raw[start:end])
        text = _TEXTS["site"][said.ru].format(site=re.sub(r"^https?://", "", site, flags=_I))
        return IntentReply(text, "browser_use", {"task": task, "url": url})
    return None


def _search(said: Said, start: int, end: int) -> IntentReply | None:
    for pattern in _SEARCH:
        match = pattern.fullmatch(said.key, start, end)
        if match is None or match.group("q").casefold().strip() in _NOT_QUERIES:
            continue
        query = _clean(said.raw_group(match, "q"))
        if not query:
            continue
        task = _TEXTS["search_task"][said.ru].format(q=query)
        return IntentReply(_TEXTS["search"][said.ru].format(q=query), "browser_use", {"task": task})
    return None


def _site(said: Said, start: int, end: int) -> IntentReply | None:
    for pattern in _OPEN_SITE:
        match = pattern.fullmatch(said.key, start, end)
        if match is None:
            continue
        words = match.group("name").casefold().split()
        if not words or len(words) > _MAX_SITE_WORDS or words[0] in _VAGUE:
            return None
        task = _clean(said.raw[start:end])
        return IntentReply(_TEXTS["browse"][said.ru], "browser_use", {"task": task})
    return None


def _clean(text: str) -> str:
    """One line, no trailing punctuation: the words as the client's agent should read them."""
    return " ".join(text.split()).strip(" .,;:!?\"'«»“”")
