"""Tests for sentence segmentation of streamed reply text for TTS."""

from __future__ import annotations

import random

import pytest

from nexy.turn.segment import SentenceSegmenter

# One segment per sentence: no merging, no size cuts. Isolates the sentence-end rules.
PER_SENTENCE = {"first_max_chars": 300, "target_chars": 1, "max_chars": 300}


def segment(parts: list[str], **sizes: int) -> list[str]:
    """Push the parts in order, then flush; return every segment."""
    segmenter = SentenceSegmenter(**sizes)
    segments = [s for part in parts for s in segmenter.push(part)]
    return segments + segmenter.flush()


def splits(text: str) -> dict[str, list[str]]:
    """The text whole, one character at a time, and cut at random (fixed seeds)."""
    variants = {"whole": [text], "chars": list(text)}
    for seed in range(3):
        rng, parts, i = random.Random(seed), [], 0
        while i < len(text):
            size = rng.randint(1, 9)
            parts.append(text[i : i + size])
            i += size
        variants[f"random{seed}"] = parts
    return variants


def assert_segments(text: str, expected: list[str], **sizes: int) -> None:
    """Every way of splitting the text gives exactly the expected segments."""
    assert "".join(expected) == text  # guards the table itself
    for name, parts in splits(text).items():
        assert segment(parts, **sizes) == expected, name


EN_SENTENCES = [
    ("plain", "Hello there. How are you? Fine!", ["Hello there. ", "How are you? ", "Fine!"]),
    ("number", "Pi is 3.14 today. Next.", ["Pi is 3.14 today. ", "Next."]),
    ("thousands", "It costs 1,000.5 dollars. Ok.", ["It costs 1,000.5 dollars. ", "Ok."]),
    ("number-at-end", "I counted to 10. Then stopped.", ["I counted to 10. ", "Then stopped."]),
    ("version", "Get 1.2.3 or v2.0 now. Done.", ["Get 1.2.3 or v2.0 now. ", "Done."]),
    ("version-at-end", "Update to v2.0. Then restart.", ["Update to v2.0. ", "Then restart."]),
    ("file-name", "Open main.py first. Then run it.", ["Open main.py first. ", "Then run it."]),
    (
        "url",
        "See https://example.com/a.b?c=d. It works.",
        ["See https://example.com/a.b?c=d. ", "It works."],
    ),
    ("email", "Mail a.b@example.com today. Thanks.", ["Mail a.b@example.com today. ", "Thanks."]),
    ("ip", "Ping 192.168.0.1 now. Done.", ["Ping 192.168.0.1 now. ", "Done."]),
    (
        "titles",
        "Ask Dr. Smith and Mr. Brown. They know.",
        ["Ask Dr. Smith and Mr. Brown. ", "They know."],
    ),
    (
        "more-titles",
        "Meet Mrs. Lee, Ms. Kim and Prof. Wu. Ok.",
        ["Meet Mrs. Lee, Ms. Kim and Prof. Wu. ", "Ok."],
    ),
    (
        "e.g.-i.e.",
        "Use e.g. Python, i.e. A tool. Fine.",
        ["Use e.g. Python, i.e. A tool. ", "Fine."],
    ),
    ("st-vs", "St. Louis vs. Paris won. Ok.", ["St. Louis vs. Paris won. ", "Ok."]),
    (
        "approx-fig",
        "It is approx. 5 in Fig. 3 here. Ok.",
        ["It is approx. 5 in Fig. 3 here. ", "Ok."],
    ),
    ("case-insensitive", "Ask DR. Who. Ok.", ["Ask DR. Who. ", "Ok."]),
    ("number-sign", "See No. 5 here. No. I can't.", ["See No. 5 here. ", "No. ", "I can't."]),
    ("months", "Due Jan. 5 or Sept. 10. Ok.", ["Due Jan. 5 or Sept. 10. ", "Ok."]),
    (
        "am-pm",
        "Meet at 9 a.m. tomorrow. Leave at 5 p.m. Then rest.",
        ["Meet at 9 a.m. tomorrow. ", "Leave at 5 p.m. ", "Then rest."],
    ),
    ("unknown-abbreviation", "Buy eggs etc. today. Ok.", ["Buy eggs etc. today. ", "Ok."]),
    ("initials", "J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it. ", "Yes."]),
    ("list-numbers", "1. First step\n2. Second step", ["1. First step\n", "2. Second step"]),
    ("list-after-intro", "Steps. 1. Open it. Done.", ["Steps. ", "1. Open it. ", "Done."]),
    ("ellipsis", "Wait... What? Hmm… ok. Fine…", ["Wait... ", "What? ", "Hmm… ok. ", "Fine…"]),
    ("question-exclaim", "Really?! Yes!!! Sure?", ["Really?! ", "Yes!!! ", "Sure?"]),
    (
        "quotes-brackets",
        'He said "Stop." Then left. (Fine!) Ok.',
        ['He said "Stop." ', "Then left. ", "(Fine!) ", "Ok."],
    ),
    ("quote-mid-sentence", 'She said "Go." then left.', ['She said "Go." then left.']),
    ("newline", "Line one\nLine two\n\nPara two.", ["Line one\n", "Line two\n\n", "Para two."]),
    ("sentence-then-newline", "Title.\n  Body", ["Title.\n  ", "Body"]),
    ("leading-newlines", "\n\nHi.\nThere", ["\n\nHi.\n", "There"]),
    ("no-space-after-mark", "Wow!Great.Ok", ["Wow!Great.Ok"]),
]

RU_SENTENCES = [
    ("plain", "Привет. Как дела? Отлично!", ["Привет. ", "Как дела? ", "Отлично!"]),
    ("number", "Число 3.14 и версия 1.2.3. Да.", ["Число 3.14 и версия 1.2.3. ", "Да."]),
    ("т.е.", "Это т.е. Пример. Да.", ["Это т.е. Пример. ", "Да."]),
    (
        "т.к.-т.н.",
        "Т.к. Иван занят, т.н. Друг придёт. Ок.",
        ["Т.к. Иван занят, т.н. Друг придёт. ", "Ок."],
    ),
    ("т.д.-at-end", "Хлеб, молоко и т.д. Потом домой.", ["Хлеб, молоко и т.д. ", "Потом домой."]),
    ("т.д.-mid", "Хлеб и т.д. и т.п. Потом.", ["Хлеб и т.д. и т.п. ", "Потом."]),
    (
        "др.",
        "Иван и др. пришли. Мы и др. Потом ушли.",
        ["Иван и др. пришли. ", "Мы и др. ", "Потом ушли."],
    ),
    ("напр.", "Напр. Москва большая. Да.", ["Напр. Москва большая. ", "Да."]),
    ("г.-ул.", "Живу в г. Москва на ул. Ленина. Да.", ["Живу в г. Москва на ул. Ленина. ", "Да."]),
    ("гг.", "В 1990-2000 гг. Страна росла. Да.", ["В 1990-2000 гг. Страна росла. ", "Да."]),
    (
        "им.-см.-стр.",
        "Музей им. Пушкина, см. Стр. 5. Ок.",
        ["Музей им. Пушкина, см. Стр. 5. ", "Ок."],
    ),
    (
        "тыс.-млн.-млрд.",
        "Это 5 тыс. Рублей, 3 млн. Долларов и 2 млрд. Евро. Да.",
        ["Это 5 тыс. Рублей, 3 млн. Долларов и 2 млрд. Евро. ", "Да."],
    ),
    ("руб.", "Цена 100 руб. За штуку. Да.", ["Цена 100 руб. За штуку. ", "Да."]),
    ("initials", "А. С. Пушкин — поэт. Да.", ["А. С. Пушкин — поэт. ", "Да."]),
    ("unknown-abbreviation", "Сокр. слово тут. Да.", ["Сокр. слово тут. ", "Да."]),
    ("list-numbers", "1. Первый\n2. Второй", ["1. Первый\n", "2. Второй"]),
    ("ellipsis", "Ну... Ладно. Хм… да.", ["Ну... ", "Ладно. ", "Хм… да."]),
    ("guillemets", "«Стой!» Он ушёл. «Да?» Нет.", ["«Стой!» ", "Он ушёл. ", "«Да?» ", "Нет."]),
    ("url", "Сайт example.com/a.b. Смотри.", ["Сайт example.com/a.b. ", "Смотри."]),
    ("email", "Пиши на a.b@example.com сейчас. Да.", ["Пиши на a.b@example.com сейчас. ", "Да."]),
    ("ip", "Адрес 192.168.0.1 работает. Да.", ["Адрес 192.168.0.1 работает. ", "Да."]),
    (
        "file-name",
        "Открой main.py сначала. Потом запусти.",
        ["Открой main.py сначала. ", "Потом запусти."],
    ),
]

CJK_SENTENCES = [
    ("no-space-needed", "你好。我很好！谢谢？好", ["你好。", "我很好！", "谢谢？", "好"]),
    ("closing-bracket", "他说「好。」然后走了。", ["他说「好。」", "然后走了。"]),
    ("space-after", "你好。 我很好。", ["你好。 ", "我很好。"]),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in EN_SENTENCES], ids=[c[0] for c in EN_SENTENCES]
)
def test_english_sentence_ends(text: str, expected: list[str]) -> None:
    assert_segments(text, expected, **PER_SENTENCE)


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in RU_SENTENCES], ids=[c[0] for c in RU_SENTENCES]
)
def test_russian_sentence_ends(text: str, expected: list[str]) -> None:
    assert_segments(text, expected, **PER_SENTENCE)


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in CJK_SENTENCES], ids=[c[0] for c in CJK_SENTENCES]
)
def test_cjk_sentence_ends(text: str, expected: list[str]) -> None:
    assert_segments(text, expected, **PER_SENTENCE)


LONG_CLAUSES = (
    "This opening sentence runs on, with a pause here, and another one there; "
    "it only ends much later. Next."
)
LATE_CLAUSE = (
    "This opening sentence runs on and on without any pause at all until here, then it ends. Next."
)
NO_CLAUSE = "This opening sentence runs on and on without any pause or clause in it at all. Next."
MERGE = (
    "Hi. " + "One two three four five. " * 3 + "Six seven eight nine ten eleven twelve. End of it."
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi", ["Hi"]),
        ("Hi.", ["Hi."]),
        ("Hi. ", ["Hi. "]),
        ("Hi.  \n", ["Hi.  \n"]),
        ("", []),
        ("   ", ["   "]),
        # The first segment ends at the first sentence end, however short.
        (
            "Ok. Then a longer second sentence follows.",
            ["Ok. ", "Then a longer second sentence follows."],
        ),
        # Past first_max_chars without a sentence end: cut at the last clause boundary before it.
        (
            LONG_CLAUSES,
            [
                "This opening sentence runs on, with a pause here, ",
                "and another one there; it only ends much later. Next.",
            ],
        ),
        # No clause boundary within first_max_chars: the first one after it.
        (
            LATE_CLAUSE,
            [
                "This opening sentence runs on and on without any pause at all until here, ",
                "then it ends. Next.",
            ],
        ),
        # No clause boundary at all: the whole first sentence.
        (NO_CLAUSE, [NO_CLAUSE[:-5], "Next."]),
        # Later sentences merge while the segment stays within target_chars (120).
        (
            MERGE,
            [
                "Hi. ",
                "One two three four five. " * 3 + "Six seven eight nine ten eleven twelve. ",
                "End of it.",  # 115 + 10 characters would overflow 120
            ],
        ),
        # A line break is a pause of its own: no merging across it.
        ("Hi. One.\nTwo. Three.", ["Hi. ", "One.\n", "Two. Three."]),
    ],
)
def test_default_sizes(text: str, expected: list[str]) -> None:
    assert_segments(text, expected)


def test_merge_emits_once_the_next_sentence_would_overflow() -> None:
    sizes = {"first_max_chars": 60, "target_chars": 30, "max_chars": 100}
    text = "Hi. Aaaa aaaa. Bbbb bbbb. Cccc cccc cccc cccc. Dd."
    expected = ["Hi. ", "Aaaa aaaa. Bbbb bbbb. ", "Cccc cccc cccc cccc. Dd."]
    assert_segments(text, expected, **sizes)


def test_short_sentence_is_held_until_the_next_sentence_end_or_flush() -> None:
    segmenter = SentenceSegmenter()
    assert segmenter.push("First. Second one.") == ["First. "]
    assert segmenter.push(" Third") == []
    assert segmenter.push(" one.") == []
    assert segmenter.flush() == ["Second one. Third one."]


def test_decision_waits_for_the_next_characters() -> None:
    segmenter = SentenceSegmenter(**PER_SENTENCE)
    assert segmenter.push("Pi is 3.") == []
    assert segmenter.push("14 now. ") == []  # a lowercase word would mean no sentence end
    assert segmenter.push("So") == ["Pi is 3.14 now. "]
    assert segmenter.push(" e.g. ") == []
    assert segmenter.push("this. Ok") == ["So e.g. this. "]
    assert segmenter.flush() == ["Ok"]


def test_word_split_across_pushes_arrives_whole() -> None:
    segmenter = SentenceSegmenter()
    assert segmenter.push("Hel") == []
    assert segmenter.push("lo wor") == []
    assert segmenter.push("ld. Nex") == ["Hello world. "]
    assert segmenter.push("t wo") == []
    assert segmenter.push("rd") == []
    assert segmenter.flush() == ["Next word"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Past max_chars without a boundary: cut at the last whitespace, never inside a word.
        (
            "alpha beta gamma delta epsilon zeta eta theta iota kappa",
            ["alpha beta gamma delta epsilon ", "zeta eta theta iota kappa"],
        ),
        # No whitespace at all: a hard cut at max_chars.
        ("x" * 70, ["x" * 30, "x" * 30, "x" * 10]),
        ("你好世界" * 8, ["你好世界" * 7 + "你好", "世界"]),
    ],
)
def test_max_chars_cut(text: str, expected: list[str]) -> None:
    assert_segments(text, expected, first_max_chars=10, target_chars=20, max_chars=30)


def test_flush_resets_for_the_next_reply() -> None:
    segmenter = SentenceSegmenter()
    assert segmenter.push("One. Two") == ["One. "]
    assert segmenter.flush() == ["Two"]
    assert segmenter.flush() == []
    assert segmenter.push("Three. Four") == ["Three. "]  # the first segment is fast again


VOCABULARY = [
    "Hello", "world", "мир", "Привет", "3.14", "1,000.5", "v2.0", "main.py", "e.g.", "Dr.",
    "J.", "1.", "т.е.", "г.", "...", "…", "?!", ".", "!", "?", ",", ";", ":", "—", '"', "»",
    ")", "\n", "\n\n", "  ", "你好。", "https://example.com/a.b?c=d.", "a.b@example.com",
    "192.168.0.1", "x" * 45, "No.", "p.m.", "and", "the", "Then",
]  # fmt: skip


@pytest.mark.parametrize(
    "sizes",
    [
        {},
        {"first_max_chars": 20, "target_chars": 40, "max_chars": 80},
        PER_SENTENCE,
        {"first_max_chars": 5, "target_chars": 10, "max_chars": 15},
    ],
    ids=["default", "small", "per-sentence", "tiny"],
)
def test_segments_rebuild_the_text_whatever_the_split(sizes: dict[str, int]) -> None:
    rng = random.Random(1234)
    max_chars = sizes.get("max_chars", 300)
    for _ in range(150):
        words = [rng.choice(VOCABULARY) + rng.choice(["", " ", " ", "\n"]) for _ in range(80)]
        text = "".join(words[: rng.randint(0, 80)])
        reference = segment([text], **sizes)
        assert "".join(reference) == text
        assert all(reference), "no empty segments"
        assert not any(s[0].isspace() for s in reference[1:]), "whitespace ends a segment"
        assert all(len(s.rstrip()) <= max_chars for s in reference)
        for parts in list(splits(text).values())[1:]:
            assert segment(parts, **sizes) == reference


@pytest.mark.parametrize(
    ("pushed", "guess"),
    [
        ("Sure.", "Sure."),
        ("Sure. ", "Sure. "),
        ("Опять вы?", "Опять вы?"),
        ("Pi is 3.", None),  # "3." + "14"
        ("Ask Dr.", None),  # "Dr. Smith"
        ("Sure. I", None),  # already decided by what follows: no guess needed
        ("Sure", None),  # no sentence end yet
        ("This first sentence is far too long to be taken as a guess.", None),  # > first_max
    ],
)
def test_a_first_sentence_waiting_only_on_what_follows_can_be_taken_early(
    pushed: str, guess: str | None
) -> None:
    segmenter = SentenceSegmenter(first_max_chars=32)
    decided = segmenter.push(pushed)
    assert segmenter.tentative() == guess
    if guess is None:
        return
    assert decided == [] and segmenter.take_tentative() == [guess]
    assert segmenter.tentative() is None  # only the first segment is ever guessed


def test_a_wrong_guess_changes_only_where_the_first_pause_is() -> None:
    segmenter = SentenceSegmenter()
    assert segmenter.push("It costs 5 USD.") == []
    assert segmenter.take_tentative() == ["It costs 5 USD."]
    # The sentence went on: the rest is the next segment and the text is unchanged.
    rest = segmenter.push(" per month. Fine.") + segmenter.flush()
    assert "".join(["It costs 5 USD.", *rest]) == "It costs 5 USD. per month. Fine."
