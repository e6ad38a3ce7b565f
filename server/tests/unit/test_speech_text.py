"""Tests for cleaning reply segments into text a voice can read."""

from __future__ import annotations

import pytest

from nexy.turn.speech_text import clean_for_speech, ru_plural

EN = [
    ("bold", "This is **very** important.", "This is very important."),
    ("bold-underscores", "This is __very__ important.", "This is very important."),
    ("italic-star", "This is *quite* nice.", "This is quite nice."),
    ("italic-underscore", "This is _quite_ nice.", "This is quite nice."),
    ("strike", "It was ~~old~~ new.", "It was old new."),
    ("bold-italic-mix", "**Note:** read _this_ first.", "Note: read this first."),
    ("stray-open-star", "*Careful here. ", "Careful here. "),
    ("stray-close-star", "It matters.* ", "It matters. "),
    ("stray-double-star", "**Step one. ", "Step one. "),
    ("heading", "# Getting started", "Getting started"),
    ("heading-deep", "### Step two\n", "Step two\n"),
    ("bullet-dash", "- first item\n", "first item\n"),
    ("bullet-star", "* first item", "first item"),
    ("bullet-dot", "• first item", "first item"),
    ("numbered-dot", "1. Open the app\n2. Sign in", "Open the app\nSign in"),
    ("numbered-paren", "1) Open the app", "Open the app"),
    ("blockquote", "> Stay hungry.", "Stay hungry."),
    ("inline-code", "Run `pip install nexy` now.", "Run pip install nexy now."),
    ("inline-code-symbols", "Use `a && b` there.", "Use a && b there."),
    ("fence-with-language", "```python\nprint(1)\n```", "print(1)"),
    ("fence-line-only", "```bash\n", ""),
    ("link", "See [the docs](https://example.com/docs) first.", "See the docs first."),
    ("link-with-parens", "Read [Python](https://w.org/Py_(lang)) now.", "Read Python now."),
    ("image", "![a red cat](cat.png) sleeps.", "a red cat sleeps."),
    ("html-tags", "<b>Bold</b> and <i>italic</i><br>next", "Bold and italic next"),
    ("html-entity", "Tom &amp; Jerry", "Tom and Jerry"),
    ("html-attributes", '<a href="https://x.com">Site</a> <br/>ok', "Site ok"),
    ("horizontal-rule", "Above\n---\nBelow", "Above\nBelow"),
    ("table", "| Name | Age |\n|---|---|\n| Ann | 30 |", "Name, Age\nAnn, 30"),
    ("emoji-before-punct", "Great job 🎉!", "Great job!"),
    ("emoji-between-words", "Great 🎉 job.", "Great job."),
    ("emoji-at-start", "🚀 Launch time.", "Launch time."),
    ("emoji-skin-tone", "Nice 👍🏽 work.", "Nice work."),
    ("emoji-zwj-family", "My 👨‍👩‍👧 family.", "My family."),
    ("emoji-flag", "Made in 🇺🇸 today.", "Made in today."),
    ("emoji-variation", "I ❤️ it.", "I it."),
    ("emoji-keycap", "Press 1️⃣ now.", "Press 1 now."),
    ("decor-stars-checks", "★ Rated ✓ done ✔", "Rated done"),
    ("box-drawing", "├── src\n└── tests", "src\ntests"),
    ("ampersand", "Tom & Jerry", "Tom and Jerry"),
    ("ampersand-tight", "AT&T", "AT and T"),
    ("percent", "Battery at 50%.", "Battery at 50 percent."),
    ("percent-spaced-decimal", "Up 2.5 %.", "Up 2.5 percent."),
    ("celsius", "It's 20°C outside.", "It's 20 degrees Celsius outside."),
    ("fahrenheit", "It's 68 °F.", "It's 68 degrees Fahrenheit."),
    ("celsius-sign", "Water boils at 100℃.", "Water boils at 100 degrees Celsius."),
    ("angle", "Turn 90°.", "Turn 90 degrees."),
    ("one-degree", "Only 1°C warmer.", "Only 1 degree Celsius warmer."),
    ("dollars", "It costs $5.", "It costs 5 dollars."),
    ("dollar-singular", "Just $1.", "Just 1 dollar."),
    ("dollars-decimal", "Only $5.99 today.", "Only 5.99 dollars today."),
    ("dollars-thousands", "About $1,000.", "About 1,000 dollars."),
    ("dollars-scale", "Raised $5 million.", "Raised 5 million dollars."),
    ("euros-before", "Pay €20.", "Pay 20 euros."),
    ("euros-after", "Pay 20 €.", "Pay 20 euros."),
    ("pounds", "Costs £3.", "Costs 3 pounds."),
    ("arrow-between-numbers", "Open 9:00 → 17:00.", "Open 9:00 to 17:00."),
    ("ascii-arrow-numbers", "Pages 10->20.", "Pages 10 to 20."),
    ("arrow-between-words", "Settings → Privacy.", "Settings Privacy."),
    ("ascii-arrow-words", "Click File -> Save.", "Click File Save."),
]

RU = [
    ("bold", "Это **очень** важно.", "Это очень важно."),
    ("heading", "## Начало работы", "Начало работы"),
    ("bullet", "- первый пункт\n", "первый пункт\n"),
    ("numbered", "1. Откройте приложение", "Откройте приложение"),
    ("link", "См. [документацию](https://example.com).", "См. документацию."),
    ("emoji", "Отлично 🎉!", "Отлично!"),
    ("ampersand", "Том & Джерри", "Том и Джерри"),
    ("percent-many", "Заряд 50%.", "Заряд 50 процентов."),
    ("percent-one", "Рост 21%.", "Рост 21 процент."),
    ("percent-few", "Рост 3%.", "Рост 3 процента."),
    ("percent-fraction", "Рост 2,5%.", "Рост 2,5 процента."),
    ("percent-teen", "Рост 12%.", "Рост 12 процентов."),
    ("celsius-latin-c", "Сейчас 20°C.", "Сейчас 20 градусов по Цельсию."),
    ("celsius-cyrillic-c", "Сейчас 21°С.", "Сейчас 21 градус по Цельсию."),
    ("fahrenheit", "Там 3 °F.", "Там 3 градуса по Фаренгейту."),
    ("dollars", "Стоит $5.", "Стоит 5 долларов."),
    ("dollar-one", "Стоит 21$.", "Стоит 21 доллар."),
    ("euros", "Стоит 3 €.", "Стоит 3 евро."),
    ("rubles", "Стоит 100 ₽.", "Стоит 100 рублей."),
    ("scale", "Собрали $5 млн.", "Собрали 5 млн долларов."),
    ("arrow-numbers", "С 9:00 → 17:00.", "С 9:00 до 17:00."),
    ("decor", "★ Готово ✓", "Готово"),
]

PROSE = [
    "Hello there. How are you today?",
    "The meeting is at 3:30 tomorrow, and it should take 45 minutes.",
    "Version 1.2.3 fixed the bug; upgrade from 1.2.2 when you can.",
    "Pi is roughly 3.14159, and e is about 2.718.",
    "Open main.py, then config.yaml, then __init__.py in the package.",
    "The variable my_long_name and the function parse_args are defined there.",
    "Visit https://example.com/path?a=1&b=2#top for details.",
    "Write to a.b+tag@example.co.uk if anything breaks.",
    "It's 5 o'clock — time for tea… or coffee?",
    'She said: "Don\'t worry" (and meant it).',
    "I counted 1,000,000 stars in 2024. It was a good year.",
    "Multiply 5 * 3 and you get 15; 2 + 2 = 4.",
    "Files like *.py and *.txt are ignored.",
    "If a <b and c> d, then 1 < 2 > 0 holds.",
    "Use C++ or C# for that, e.g. in a game engine.",
    "Привет! Как дела? Всё хорошо, спасибо.",
    "Встреча в 15:30, возьмите ноутбук и зарядку.",
    "Версия 2.0.1 вышла 12.03.2025, т.е. вчера.",
    "«Ёлки-палки», — сказал он и ушёл.",
]

WHITESPACE = [
    ("trailing-space", "Hello. ", "Hello. "),
    ("leading-space", " And then.", " And then."),
    ("newline-kept", "Done.\n", "Done.\n"),
    ("paragraph-kept", "One.\n\n", "One.\n\n"),
    ("both-ends", "  Wait **here**.  ", "  Wait here.  "),
    ("edges-around-removal", " 🎉 Party time! ", " Party time! "),
    ("inner-gap-collapsed", "A  **b**  c", "A b c"),
    ("blank-lines-collapsed", "One.\n\n\n\nTwo.", "One.\n\nTwo."),
    ("emptied-line-dropped", "Intro:\n```js\ncode()\n```\nEnd.", "Intro:\ncode()\nEnd."),
]

NOTHING_SPEAKABLE = [
    ("only-emoji", "🎉🎉 "),
    ("only-flag", "🇺🇸"),
    ("only-decor", " ★ → ✓ "),
    ("only-fence", "```\n"),
    ("only-whitespace", "   "),
    ("empty", ""),
    ("only-rule", "***"),
]


@pytest.mark.parametrize(("name", "text", "expected"), EN, ids=[case[0] for case in EN])
def test_english(name: str, text: str, expected: str) -> None:
    assert clean_for_speech(text) == expected


@pytest.mark.parametrize(("name", "text", "expected"), RU, ids=[case[0] for case in RU])
def test_russian(name: str, text: str, expected: str) -> None:
    assert clean_for_speech(text) == expected


@pytest.mark.parametrize("text", PROSE)
def test_ordinary_prose_passes_unchanged(text: str) -> None:
    assert clean_for_speech(text) == text
    assert clean_for_speech(text + " ") == text + " "


@pytest.mark.parametrize(
    ("name", "text", "expected"), WHITESPACE, ids=[case[0] for case in WHITESPACE]
)
def test_whitespace_shape(name: str, text: str, expected: str) -> None:
    assert clean_for_speech(text) == expected


@pytest.mark.parametrize(
    ("name", "text"), NOTHING_SPEAKABLE, ids=[case[0] for case in NOTHING_SPEAKABLE]
)
def test_nothing_speakable_is_empty(name: str, text: str) -> None:
    assert clean_for_speech(text) == ""


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        (["**Hello.** ", "How are you? ", "🎉"], "Hello. How are you? "),
        (["- one\n", "- two\n"], "one\ntwo\n"),
        (["It costs $5. ", "That's 50% off!"], "It costs 5 dollars. That's 50 percent off!"),
    ],
)
def test_cleaned_segments_still_concatenate(segments: list[str], expected: str) -> None:
    assert "".join(clean_for_speech(segment) for segment in segments) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("1", "час"),
        ("21", "час"),
        ("101", "час"),
        ("11", "часов"),
        ("2", "часа"),
        ("24", "часа"),
        ("12", "часов"),
        ("14", "часов"),
        ("5", "часов"),
        ("0", "часов"),
        ("1,5", "часа"),
        ("1,001", "час"),
    ],
)
def test_ru_plural(number: str, expected: str) -> None:
    assert ru_plural(number, "час", "часа", "часов") == expected


@pytest.mark.parametrize(
    "text",
    [text for _, text, _ in EN + RU if "`" not in text],  # code loses its protection
)
def test_cleaning_twice_changes_nothing(text: str) -> None:
    once = clean_for_speech(text)
    assert clean_for_speech(once) == once
