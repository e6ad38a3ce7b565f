"""Messages and contacts: send_message, read_messages and find_contact, in English and Russian.

A recipient is taken as said ("маме" stays in the case the user said it, so the Russian reply
reads naturally); phone numbers become digits with an optional leading "+". Verbs that mean
many other things ("tell", "скажи", "напиши", "text") only send when the recipient looks like
one: a capitalised name, a phone number or a family word — "напиши код, что считает" is not.
"""

from __future__ import annotations

import re

from nexy.turn.intent_base import NUMBER_WORDS, IntentReply, Said, count, trim
from nexy.turn.intent_phrases import _words

_I = re.IGNORECASE
_NOUN = r"(?:an?\s+)?(?:text\s+message|message|text|sms|imessage|whatsapp(?:\s+message)?)"
_SAY = (
    r"(?:\s+(?:saying|that\s+says|which\s+says|that|with\s+the\s+text|and\s+say(?:\s+that)?"
    r"|telling\s+(?:him|her|them)(?:\s+that)?)\s+|\s*:\s*)"
)
_RU_VERB = r"(?:(?:отправь|пошли|напиши|отошли|скинь)(?:те)?|отправить|послать|написать|скинуть)"
_RU_NOUN = r"(?:сообщение|смс|смску|эсэмэску|сообщеньку)"
_RU_SAY = r"(?:\s+(?:что|с\s+текстом|со\s+словами)\s+|\s*:\s*)"
_PHONE = r"(?P<to>\+?\d[\d\s\-()]*\d)"
_TO_MSG = r"(?P<to>.+?){say}(?P<msg>.+)"
_EN_TO, _RU_TO = _TO_MSG.format(say=_SAY), _TO_MSG.format(say=_RU_SAY)
# (pattern, cautious): a cautious verb needs a recipient that looks like one.
_SEND: tuple[tuple[re.Pattern[str], bool], ...] = (
    (re.compile(rf"(?:send|write|shoot|drop)\s+{_NOUN}\s+to\s+{_EN_TO}", _I), False),
    (re.compile(rf"(?:send|write)\s+(?P<to>.+?)\s+{_NOUN}{_SAY}(?P<msg>.+)", _I), False),
    (re.compile(rf"{_RU_VERB}\s+{_RU_NOUN}(?:\s+для)?\s+{_RU_TO}", _I), False),
    (re.compile(rf"{_RU_VERB}\s+(?P<to>.+?)\s+{_RU_NOUN}{_RU_SAY}(?P<msg>.+)", _I), False),
    (re.compile(rf"(?:text|message|sms|imessage)\s+{_EN_TO}", _I), True),
    (re.compile(r"(?:tell|let)\s+(?P<to>.+?)(?:\s+know)?\s+that\s+(?P<msg>.+)", _I), True),
    (re.compile(rf"(?:напиши|скажи|передай|сообщи)(?:те)?\s+{_RU_TO}", _I), True),
    (
        re.compile(
            rf"(?:(?:send|write)\s+{_NOUN}\s+to|text|message|sms)\s+{_PHONE}\s+(?P<msg>.+)", _I
        ),
        False,
    ),
    (
        re.compile(
            rf"{_RU_VERB}(?:\s+{_RU_NOUN})?(?:\s+на(?:\s+номер)?)?\s+{_PHONE}\s+(?P<msg>.+)", _I
        ),
        False,
    ),
)
# "tell Mike I'll call him back": no word between the recipient and the message, so the
# recipient is one capitalised name (or a family word) and the message at least two words that
# do not start like a question, a topic or a second name ("tell Mike Tyson stories").
_BARE = re.compile(r"(?:tell|text)\s+(?P<to>\S+)\s+(?P<msg>\S+(?:\s+\S+)+)", _I)
_NOT_MESSAGE_STARTS = _words(
    "about to how what why when where who whom whose which whether if a an me us him her them "
    "it this that joke jokes story stories something anything everything nothing more"
)
_I_WORDS = frozenset({"i", "i'm", "i'll", "i've", "i'd"})
_N = rf"(?P<n>\d+|{NUMBER_WORDS})"
_FROM = r"(?:\s+(?:from|от)\s+(?P<to>.+))?"
_READ = (
    re.compile(
        r"(?:read|check|show)(?:\s+me)?(?:\s+(?:my|the))?(?:\s+(?P<last>last|latest|recent|new"
        rf"|unread))?(?:\s+{_N})?(?:\s+(?:new|unread|recent))?\s+(?P<noun>messages?|texts?|sms)"
        rf"{_FROM}",
        _I,
    ),
    re.compile(
        rf"(?:do\s+i\s+have\s+|are\s+there\s+)?any\s+(?:new\s+)?(?:messages|texts){_FROM}", _I
    ),
    re.compile(
        r"(?:(?:прочитай|прочти|покажи|проверь)(?:те)?|прочитать|показать|проверить)(?:\s+мне)?(?:\s+мои)?(?:\s+(?P<last>последн\w*"
        rf"|нов\w*|непрочитанн\w*))?(?:\s+{_N})?(?:\s+(?:последн|нов|непрочитанн)\w*)?"
        rf"\s+(?P<noun>сообщени[еяй]|смс){_FROM}",
        _I,
    ),
    re.compile(
        rf"(?:у\s+меня\s+)?(?:есть\s+)?(?:ли\s+)?(?:новые|непрочитанные)\s+сообщения{_FROM}", _I
    ),
)
_FIND_VERB = r"(?:find|look\s+up|search\s+for|show\s+me|get|pull\s+up)"
_CARD = r"contact(?:\s+(?:info|details|card))?"
_RU_CARD = r"(?:контакт|номер(?:\s+телефона)?|телефон)"
_FIND = (
    re.compile(rf"{_FIND_VERB}\s+(?P<q>.+?)'s\s+(?:phone\s+)?(?:number|{_CARD})", _I),
    re.compile(rf"{_FIND_VERB}\s+(?:the\s+)?(?:{_CARD}|(?:phone\s+)?number)\s+for\s+(?P<q>.+)", _I),
    re.compile(rf"{_FIND_VERB}\s+(?:the\s+)?(?:{_CARD}|phone\s+number)\s+of\s+(?P<q>.+)", _I),
    re.compile(rf"{_FIND_VERB}\s+(?:the\s+)?contact\s+(?P<q>.+)", _I),
    re.compile(rf"{_FIND_VERB}\s+(?P<q>.+?)\s+in\s+(?:my\s+)?(?:contacts|address\s+book)", _I),
    re.compile(r"search\s+(?:my\s+)?contacts\s+for\s+(?P<q>.+)", _I),
    re.compile(r"what(?:'s|\s+is)\s+(?P<q>.+?)'s\s+(?:phone\s+)?number", _I),
    re.compile(
        rf"(?:(?:найди|покажи|поищи)(?:те)?|найти|показать|поискать)(?:\s+мне)?\s+{_RU_CARD}(?:\s+(?:у|для))?\s+(?P<q>.+)",
        _I,
    ),
    re.compile(
        r"(?:(?:найди|поищи)(?:те)?|найти|поискать)\s+(?:в\s+контактах\s+(?P<q>.+)|(?P<q2>.+?)\s+в\s+контактах)",
        _I,
    ),
    re.compile(rf"какой\s+{_RU_CARD}\s+у\s+(?P<q>.+)", _I),
)

_FAMILY = re.compile(
    r"(?:mom|mum|mommy|mother|dad|daddy|father|wife|husband|grandma|grandpa|granny|brother"
    r"|sister|son|daughter|boss|мам|пап|бабушк|бабул|дедушк|дед|жен|муж|брат|сестр|сын|доч"
    r"|начальник|шеф)\w*",
    _I,
)
_NOT_CONTACTS = _words(
    "me us him her them it you everyone everybody someone somebody the a an what how why when "
    "мне нам ему ей им тебе вам всем это честно правду как почему что телефона"
)
_NOT_IN_CONTACTS = _words(
    "and or then in on at by for from of to with about и или в на с для из по о об про"
)
_POSSESSIVE = re.compile(r"^(?:my|мой|моей|моему|моя|мою|моего)\s+", _I)
_POLITE_TAIL = re.compile(r",\s*(?:please|пожалуйста|n[ea]xy|н[еэ]кси)[\s.!?]*$", _I)
_MAX_CONTACT_WORDS = 4
_TEXTS = {
    "send": ("Sending your message to {to}.", "Отправляю сообщение {to}."),
    "send_phone": ("Sending your message to {to}.", "Отправляю сообщение на номер {to}."),
    "read": ("Reading your messages.", "Читаю ваши сообщения."),
    "read_from": ("Reading your messages from {to}.", "Читаю сообщения от {to}."),
    "find": ("Looking up {q} in your contacts.", "Ищу контакт: {q}."),
}


def match_messages(said: Said, start: int, end: int) -> IntentReply | None:
    """A send, read or find-contact request, or None."""
    return _send(said, start) or _read(said, start, end) or _find(said, start, end)


def _send(said: Said, start: int) -> IntentReply | None:
    # The message is the user's words to the end: "for me" or "please" may belong to it.
    _, end = trim(said.key, start, len(said.key))
    tail = _POLITE_TAIL.search(said.raw, start, end)
    end = trim(said.key, start, tail.start())[1] if tail else end
    key = said.with_colons()
    for pattern, cautious in _SEND:
        match = pattern.fullmatch(key, start, end)
        if match is None:
            continue
        # "that"/"что" also ends many requests that are not messages ("write a text to explain
        # that …"): only a recipient that looks like one is trusted with it.
        joint = said.key[match.end("to") : match.start("msg")].lower().split()
        to = _contact(said, match, "to", cautious or "that" in joint or "что" in joint)
        message = said.raw_group(match, "msg").strip(" .,;:\"'«»“”")
        if to is None or not message:
            continue
        phone = _phone(to)
        text = _TEXTS["send_phone" if phone else "send"][said.ru].format(to=to)
        return IntentReply(text, "send_message", {"contact": phone or to, "message": message})
    return _send_bare(said, start, end)


def _send_bare(said: Said, start: int, end: int) -> IntentReply | None:
    """ "tell Mike I'll call him back": a named recipient straight after the verb."""
    match = _BARE.fullmatch(said.key, start, end)
    if match is None:
        return None
    to = said.raw_group(match, "to")
    message = said.raw_group(match, "msg").strip(" .,;:\"'«»“”")
    first = message.split()[0] if message else ""
    if not (to.isalpha() and (to[0].isupper() or _FAMILY.fullmatch(to))):
        return None  # "tell John's wife …", "tell me …", "text messages are …"
    if to.casefold() in _NOT_CONTACTS or first.casefold() in _NOT_MESSAGE_STARTS:
        return None
    if first[:1].isupper() and first.casefold() not in _I_WORDS:
        return None  # a second name: "tell Mike Tyson stories"
    text = _TEXTS["send"][said.ru].format(to=to)
    return IntentReply(text, "send_message", {"contact": to, "message": message})


def _read(said: Said, start: int, end: int) -> IntentReply | None:
    for pattern in _READ:
        match = pattern.fullmatch(said.key, start, end)
        if match is None:
            continue
        args: dict[str, str | int] = {}
        to = _contact(said, match, "to", False) if match.group("to") else ""
        if to is None:
            return None
        if to:
            args["contact"] = _phone(to) or to
        groups = match.groupdict()
        limit = count(groups.get("n"))
        singular = groups.get("noun") in ("message", "text", "сообщение")
        if limit is None and groups.get("last") and singular:
            limit = 1  # "read my last message"
        if limit is not None:
            args["limit"] = limit
        text = _TEXTS["read_from" if to else "read"][said.ru].format(to=to)
        return IntentReply(text, "read_messages", args)
    return None


def _find(said: Said, start: int, end: int) -> IntentReply | None:
    for pattern in _FIND:
        match = pattern.fullmatch(said.key, start, end)
        if match is None:
            continue
        group = "q" if match.group("q") is not None else "q2"
        query = _contact(said, match, group, False)
        if query is None:
            return None
        text = _TEXTS["find"][said.ru].format(q=query)
        return IntentReply(text, "find_contact", {"query": _phone(query) or query})
    return None


def _contact(said: Said, match: re.Match[str], group: str, cautious: bool) -> str | None:
    """The recipient as said, or None when the words do not look like one."""
    name = _POSSESSIVE.sub("", said.raw_group(match, group).strip(" .,;:\"'«»“”"))
    if _phone(name):
        return name
    words = name.casefold().split()
    if not words or len(words) > _MAX_CONTACT_WORDS or words[0] in _NOT_CONTACTS:
        return None
    if any(word in _NOT_IN_CONTACTS for word in words):
        return None
    if cautious and not (name[0].isupper() or _FAMILY.fullmatch(words[0])):
        return None
    return name


def _phone(text: str) -> str:
    """Digits with an optional leading "+" when the text is a phone number, else ""."""
    if not re.fullmatch(r"\+?[\d\s\-().]+", text):
        return ""
    digits = re.sub(r"\D", "", text)
    return ("+" if text.startswith("+") else "") + digits if len(digits) >= 3 else ""
