"""Reply text a voice can read: markdown, emoji and decorative symbols out, symbols as words.

:func:`clean_for_speech` runs on each reply segment before synthesis, and the client is sent the
same cleaned text, so what is shown is what is heard. It is deliberately conservative: ordinary
words, numbers, versions (1.2.3), file names (``__init__.py``, ``my_file.txt``), URLs and e-mail
addresses pass through unchanged; inline code keeps its text without the backticks.

Symbols become words in the segment's language (Cyrillic anywhere in it means Russian):
``&`` → "and"/"и"; ``50%`` → "50 percent"/"50 процентов"; ``20°C`` → "20 degrees Celsius"/
"20 градусов по Цельсию"; ``$5``/``5 €``/``£3``/``₽100`` → "5 dollars"/"5 euros"/"3 pounds"/
"100 rubles" (Russian forms agree with the number: "21 доллар", "3 доллара", "5 долларов");
an arrow between two numbers (``9:00 → 17:00``) → "to"/"до", any other arrow is dropped.

Segments are contiguous slices of the reply that the server concatenates, so a segment's leading
and trailing whitespace is kept exactly; only the whitespace inside that removals leave behind is
collapsed. A segment with nothing speakable left (only emoji, only a code fence) becomes "".
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")

# Whole lines that carry no words: code fences (with their language tag) and horizontal rules.
_SILENT_LINE = re.compile(r"\s*(?:(?:```|~~~)[\w+#.-]*|([-*_])(?:\s*\1){2,})\s*")
_TABLE_RULE = re.compile(r"\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_QUOTE = re.compile(r"^\s*(?:>\s?)+")
# At most three digits: "2024. It was a good year." keeps its year.
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•‣◦▪●○■–—]|\d{1,3}[.)])\s+")

# A link target may hold one level of parentheses (Wikipedia URLs) and an optional title.
_TARGET = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)"
_IMAGE = re.compile(rf"!\[([^\]\n]*)\]{_TARGET}")
_LINK = re.compile(rf"\[([^\]\n]+)\]{_TARGET}")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^<>\s]+)>")
# Spans no rule may touch: inline code (kept without its backticks), URLs and e-mail addresses.
_PROTECTED = re.compile(
    r"(?P<ticks>`+)(?P<code>.+?)(?P=ticks)"
    r"|(?:https?://|www\.)[^\s<>\"]*[^\s<>\"'.,;:!?)\]]"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)

_HTML_TAGS = (
    "a|abbr|b|big|blockquote|br|center|code|del|details|div|em|font|h[1-6]|hr|i|img|ins|kbd|li"
    "|mark|ol|p|pre|s|small|span|strike|strong|sub|summary|sup|table|tbody|td|th|thead|tr|u|ul"
)
# Attributes must contain '=': "a <b and c> d" is a comparison, not a bold tag.
_HTML_TAG = re.compile(rf"<!--.*?-->|</?(?:{_HTML_TAGS})(?:\s[^<>=]*=[^<>]*)?\s*/?>", re.IGNORECASE)
_ENTITIES = {
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
    "&quot;": '"',
    "&#39;": "'",
    "&apos;": "'",
    "&nbsp;": " ",
    "&mdash;": "—",
    "&ndash;": "–",
    "&hellip;": "…",
}
_ENTITY = re.compile("|".join(map(re.escape, _ENTITIES)))

_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
# Underscores only as emphasis, never inside identifiers: "__init__.py" and "snake_case" stay.
_UNDERSCORE_END = r"(?![\w_])(?=$|[\s,;:!?)\]\"'»]|\.(?!\w))"
_UNDERSCORES = re.compile(rf"(?<![\w_])(__?)(?=[^\s_])(.+?)(?<=[^\s_])\1{_UNDERSCORE_END}")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
# A marker whose partner sits in another segment: "*Note. " + "It matters.*".
_STRAY_STARS = re.compile(r"\*{2,}|(?<!\S)\*(?=\w)|(?<=[\w.,!?:;)])\*(?!\S)")

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
_SCALE = r"(?:\s?(?:thousand|million|billion|trillion|тыс\.?|млн|млрд|трлн)(?!\w))?"
_CURRENCY_BEFORE = re.compile(rf"([$€£₽])\s?({_NUMBER})({_SCALE})")
_CURRENCY_AFTER = re.compile(rf"(?<![\w.,])({_NUMBER})({_SCALE})\s?([$€£₽])")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+")  # "1,000": thousands, not a fraction
_PERCENT = re.compile(rf"(?<![\w.,])({_NUMBER})\s?%")
_DEGREES = re.compile(rf"(?<![\w.,])({_NUMBER})\s?(?:°\s?([CСF])(?![\w])|([℃℉])|°)")
_NUMBER_ARROW = re.compile(r"(?<=\d)\s*(?:->|-->|=>|→|⟶|⇒)\s*(?=\d)")
_ASCII_ARROW = re.compile(r"(?<!\S)(?:-{1,2}>|=>|<-{1,2})(?!\S)")
_AMPERSAND = re.compile(r"\s*&+\s*")

# Emoji and pictographs (with their joiners, variation selectors, skin tones, keycaps and flag
# tags), arrows, box drawing, geometric shapes, stars, check marks and bullets.
_DECOR_CHARS = (
    "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2190-\u21ff\u27f0-\u27ff\u2900-\u297f"
    "\u2500-\u25ff\ufe00-\ufe0f\u200d\u20e3\U000e0020-\U000e007f\u2022\u2023\u2043\u2219"
    "\u231a\u231b\u2328\u23cf\u23e9-\u23fa\u3030\u303d\u3297\u3299"
)
_DECOR = re.compile(rf"[ \t]*[{_DECOR_CHARS}]+[ \t]*")
_CLOSING_PUNCT = frozenset(".,!?;:)]}…»\"'")
_SPACE_RUN = re.compile(r"[ \t]{2,}")
_BLANK_RUN = re.compile(r"\n{3,}")
_SPEAKABLE = re.compile(r"[^\W_]")

# Unit words: English (singular, plural), Russian (one, few, many).
_CURRENCY_WORDS: dict[str, tuple[tuple[str, str], tuple[str, str, str]]] = {
    "$": (("dollar", "dollars"), ("доллар", "доллара", "долларов")),
    "€": (("euro", "euros"), ("евро", "евро", "евро")),
    "£": (("pound", "pounds"), ("фунт", "фунта", "фунтов")),
    "₽": (("ruble", "rubles"), ("рубль", "рубля", "рублей")),
}
_PERCENT_WORDS = (("percent", "percent"), ("процент", "процента", "процентов"))
_DEGREE_WORDS = (("degree", "degrees"), ("градус", "градуса", "градусов"))
_SCALES = {"C": ("Celsius", "по Цельсию"), "F": ("Fahrenheit", "по Фаренгейту")}


def ru_plural(number: str, one: str, few: str, many: str) -> str:
    """The Russian noun form that agrees with a written number ("1 час", "3 часа", "5 часов")."""
    if not _GROUPED.fullmatch(number) and re.search(r"[.,]\d", number):
        return few  # a fraction takes the genitive singular: "2,5 процента"
    digits = re.sub(r"\D", "", number) or "0"
    n = int(digits[-2:])
    if n % 10 == 1 and n != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n <= 14:
        return few
    return many


def _unit(number: str, forms: tuple[tuple[str, str], tuple[str, str, str]], ru: bool) -> str:
    """The unit word for a number, in the segment's language."""
    if ru:
        return ru_plural(number, *forms[1])
    return forms[0][0] if number == "1" else forms[0][1]


def _symbols(text: str, ru: bool) -> str:
    """Currency, percent, degree, arrow and ampersand signs as words."""

    def money(number: str, scale: str, sign: str) -> str:
        forms = _CURRENCY_WORDS[sign]
        if scale:  # "5 million dollars", "5 млн долларов": the scale word governs the unit
            return f"{number}{scale} {forms[1][2] if ru else forms[0][1]}"
        return f"{number} {_unit(number, forms, ru)}"

    def degrees(match: re.Match[str]) -> str:
        number, letter, sign = match.group(1), match.group(2), match.group(3)
        spoken = f"{number} {_unit(number, _DEGREE_WORDS, ru)}"
        scale = "C" if letter in ("C", "С") or sign == "℃" else "F" if letter or sign else ""
        return f"{spoken} {_SCALES[scale][ru]}" if scale else spoken

    text = _CURRENCY_BEFORE.sub(lambda m: money(m[2], m[3], m[1]), text)
    text = _CURRENCY_AFTER.sub(lambda m: money(m[1], m[2], m[3]), text)
    text = _PERCENT.sub(lambda m: f"{m[1]} {_unit(m[1], _PERCENT_WORDS, ru)}", text)
    text = _DEGREES.sub(degrees, text)
    text = _NUMBER_ARROW.sub(" до " if ru else " to ", text)
    text = _ASCII_ARROW.sub(" → ", text)  # dropped with the other decorations below
    return _AMPERSAND.sub(" и " if ru else " and ", text)


def _drop_decor(text: str) -> str:
    """Remove emoji and decorative symbols without leaving a gap before punctuation."""

    def gap(match: re.Match[str]) -> str:
        before = text[match.start() - 1] if match.start() else ""
        after = text[match.end()] if match.end() < len(text) else ""
        if not before or not after or before == "\n" or after == "\n":
            return ""
        return "" if after in _CLOSING_PUNCT or before in "([{«\"'" else " "

    return _DECOR.sub(gap, text)


def _inline(text: str, ru: bool) -> str:
    """Clean text outside protected spans: emphasis, symbols, decorations."""
    text = _STRONG.sub(r"\1", text)
    text = _STRIKE.sub(r"\1", text)
    text = _UNDERSCORES.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = _STRAY_STARS.sub("", text).replace("`", "")
    return _drop_decor(_symbols(text, ru))


def _each_unprotected(text: str, clean: Callable[[str], str]) -> str:
    """Apply ``clean`` between the protected spans; inline code loses only its backticks."""
    parts: list[str] = []
    at = 0
    for match in _PROTECTED.finditer(text):
        parts.append(clean(text[at : match.start()]))
        parts.append(match["code"].strip() if match["code"] is not None else match[0])
        at = match.end()
    parts.append(clean(text[at:]))
    return "".join(parts)


def _line(line: str, ru: bool) -> str:
    """One line cleaned: line markers first, then links, then everything inline."""
    if _SILENT_LINE.fullmatch(line) or _TABLE_RULE.fullmatch(line):
        return ""
    line = _HEADING.sub("", line)
    line = _QUOTE.sub("", line)
    line = _LIST_MARKER.sub("", line)
    if line.lstrip().startswith("|"):  # a table row: its cells read as a list
        cells = (cell.strip() for cell in line.strip().strip("|").split("|"))
        line = ", ".join(cell for cell in cells if cell)
    # Tags go before URLs are protected: an attribute's URL must not split its tag.
    line = _HTML_TAG.sub(lambda m: " " if m[0].lower().startswith("<br") else "", line)
    line = _ENTITY.sub(lambda m: _ENTITIES[m[0]], line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _AUTOLINK.sub(r"\1", line)
    line = _each_unprotected(line, lambda part: _inline(part, ru))
    return _SPACE_RUN.sub(" ", line).strip()


def clean_for_speech(text: str) -> str:
    """Text fit to be read aloud and shown: see the module docstring for the exact rules."""
    core = text.strip()
    if not core:
        return ""
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    ru = _CYRILLIC.search(text) is not None
    lines = []
    for raw in core.split("\n"):
        cleaned = _line(raw, ru)
        # A line emptied by cleaning (a fence, an emoji) goes; a blank line stays a paragraph.
        if cleaned or not raw.strip():
            lines.append(cleaned)
    cleaned_core = _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()
    if not _SPEAKABLE.search(cleaned_core):
        return ""
    return f"{lead}{cleaned_core}{trail}"
