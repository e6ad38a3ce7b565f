"""The phrases the local intents recognise (EN and RU) and the words they answer with.

Kept apart from the matching logic in intents.py so each stays readable; patterns match a
whole utterance after polite words and the assistant's name are stripped.
"""

from __future__ import annotations

import re


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NAME = r"n[ea]xy|н[еэ]кси"
_PREFIX = _rx(
    rf"(?:(?:hey|hi|hello|ok|okay|привет|эй|слушай)\s+)?(?:{_NAME})\b",
    r"(?:please|kindly|just|go\s+ahead\s+and|i\s+(?:want|need)\s+you\s+to|i'd\s+like\s+you\s+to)\b",
    r"(?:(?:can|could|would|will)\s+you(?:\s+please)?|hey|hi|hello|ok|okay)\b",
    r"(?:(?:ты|вы)\s+)?(?:можешь|можете|мог\s+бы|могла\s+бы|могли\s+бы)\b",
    r"(?:не\s+(?:мог|могла|могли)\s+бы(?:\s+(?:ты|вы))?|будь(?:те)?\s+(?:добр|добра|добры))\b",
    r"(?:пожалуйста|давай(?:те)?|слушай|эй|привет)\b",
)
_SUFFIX = re.compile(rf"\b(?:please|for\s+me|{_NAME}|пожалуйста)$", re.IGNORECASE)
# Politeness set off by commas mid-request ("открой, пожалуйста, терминал", "open, please, Safari"):
# the word is blanked out of the matched key, the user's words stay as said.
_POLITE_MID = re.compile(rf",\s*(?P<word>please|kindly|{_NAME}|пожалуйста)\s*(?=,)", re.IGNORECASE)

_GREETING = _rx(
    rf"(?P<word>hi|hello|hey|hiya|howdy|greetings|good\s+(?:morning|afternoon|evening|day)"
    r"|привет(?:ик|ствую)?|здравствуй(?:те)?|доброе\s+утро|добрый\s+(?:день|вечер)|салют)"
    rf"(?:\s+there)?(?:\s+(?:{_NAME}))?",
    _NAME,
)
_TIME = _rx(
    r"(?:what(?:'s|\s+is)\s+the\s+(?:current\s+)?time|what\s+time\s+is\s+it|what\s+time"
    r"|(?:tell\s+me|do\s+you\s+know)\s+(?:the\s+time|what\s+time\s+it\s+is)|(?:current\s+)?time)"
    r"(?:\s+(?:right\s+)?now)?",
    r"(?:(?:который|сколько)(?:\s+сейчас)?\s+(?:час|времени|время)|(?:текущее\s+)?время"
    r"|(?:скажи|подскажи)(?:те)?(?:\s+мне)?\s+(?:время|который\s+час|сколько\s+времени))"
    r"(?:\s+сейчас)?",
)
_DATE = _rx(
    r"what(?:'s|\s+is)\s+(?:the\s+date|the\s+day|today's\s+date|today)(?:\s+today)?",
    r"what\s+(?:date|day)(?:\s+of\s+the\s+week)?\s+is\s+(?:it|today)(?:\s+today)?",
    r"what\s+day\s+is\s+it|(?:tell\s+me\s+)?(?:today's|the)\s+date(?:\s+today)?",
    r"(?:какое|какой|какая)\s+(?:сегодня\s+)?(?:число|день(?:\s+недели)?|дата)(?:\s+сегодня)?",
    r"(?:скажи|подскажи)(?:те)?(?:\s+мне)?\s+(?:сегодняшнюю\s+)?дату|сегодняшняя\s+дата",
)
_RECALL = _rx(
    r"what\s+do\s+you\s+(?:remember|know)\s+about\s+me|what\s+do\s+you\s+remember",
    r"what\s+have\s+you\s+remembered|what\s+did\s+i\s+(?:ask|tell)\s+you\s+to\s+remember",
    r"(?:tell\s+me\s+)?what\s+you\s+(?:remember|know\s+about\s+me)",
    r"что\s+(?:ты|вы)\s+(?:помнишь|помните|запомнил[аи]?)(?:\s+(?:обо\s+мне|про\s+меня))?",
    r"что\s+(?:ты|вы)\s+(?:обо\s+мне|про\s+меня)\s+(?:помнишь|помните|знаешь|знаете)",
    r"что\s+(?:ты|вы)\s+(?:знаешь|знаете)\s+(?:обо\s+мне|про\s+меня)",
)
_FORGET = _rx(
    r"forget(?:\s+about)?(?:\s+that)?\s+(?P<q>.+)",
    r"забудь(?:те)?(?:\s+(?:про|о|об|что|то\s+что))?\s+(?P<q2>.+)",
    r"(?P<wipe>(?:clear|erase|wipe|delete)\s+(?:your|my|the)\s+memory|(?:очисти|сотри)\s+память)",
)
_EVERYTHING = _rx(
    r"(?:everything|all)(?:\s+(?:you\s+know|you\s+remember|of\s+it))?(?:\s+about\s+me)?",
    r"все(?:\s+(?:что\s+)?(?:ты\s+)?(?:знаешь|помнишь))?(?:\s+(?:обо\s+мне|про\s+меня))?",
)
_REMEMBER = _rx(
    r"(?:remember|memorize|keep\s+in\s+mind)(?:\s+that)?\s+(?P<fact>.+)",
    r"(?:запомни(?:те)?|имей(?:те)?\s+в\s+виду)(?:\s+(?:что|то\s+что))?\s+(?P<fact2>.+)",
)
_APP_SUFFIX = r"(?:\.app|\s+(?:app|application|program|приложение))?"
_OPEN = _rx(
    rf"(?P<verb>open|launch|start|run|fire\s+up)(?:\s+up)?\s+(?:the\s+)?(?P<app>.+?){_APP_SUFFIX}",
    rf"(?P<verb2>открой(?:те)?|открыть|запусти(?:те)?|запустить)(?:\s+мне)?"
    rf"(?:\s+(?P<kind>приложение|программу))?\s+(?P<app2>.+?){_APP_SUFFIX}",
)
_CLOSE = _rx(
    rf"(?:close|quit|exit)(?:\s+out\s+of)?\s+(?:the\s+)?(?P<app>.+?){_APP_SUFFIX}",
    rf"(?:закрой(?:те)?|закрыть|выйди\s+из)(?:\s+(?:приложение|программу))?\s+(?P<app2>.+?)"
    rf"{_APP_SUFFIX}",
)
# Verbs that start many things besides apps ("start the timer"): the name must look like one.
_CAUTIOUS_VERBS = frozenset({"start", "run", "fire up", "запусти", "запустите", "запустить"})
_NOT_APPS = _words(
    "a an my your our his her their this that these those it some any new file files folder "
    "tab tabs window windows link url website site page door source over again here there up "
    "timer alarm meeting call game browser all everything это его ее мой мою мое твой файл файлы "
    "папку папка вкладку окно окна ссылку сайт страницу документ дверь новый новую новое таймер "
    "будильник браузер все всё"
)
_CONNECTORS = _words("and then in on with to for from of or at by и в на с для из по или")

_SCREEN = _rx(
    r"(?:(?:tell\s+me|describe|read|can\s+you\s+(?:see|tell\s+me))\s+)?what(?:'s|\s+is)\s+on"
    r"\s+(?:my|the|this)\s+screen(?:\s+(?:right\s+)?now)?",
    r"what\s+(?:do|can)\s+you\s+see(?:\s+(?:on\s+(?:my|the)\s+screen|here|(?:right\s+)?now))?",
    r"(?:describe|read|look\s+at|explain)\s+(?:my|the|this)\s+screen|what\s+am\s+i\s+looking\s+at",
    r"(?:(?:can|do)\s+you\s+)?see\s+(?:my|the)\s+screen",
    r"(?:read|describe|explain|translate)\s+(?:this|it)(?:\s+(?:to\s+me|aloud|out\s+loud))?",
    r"(?:скажи\s+|расскажи\s+)?что\s+(?:у\s+меня\s+|сейчас\s+)*на\s+экране(?:\s+сейчас)?",
    r"что\s+(?:ты\s+)?(?:видишь|видно)(?:\s+(?:на\s+экране|здесь|тут|сейчас))?",
    r"(?:опиши|прочитай|прочти|посмотри\s+на)\s+(?:мой\s+|этот\s+)?экран|ты\s+видишь\s+(?:мой\s+)?экран",
    r"(?:прочитай|прочти|опиши|переведи)(?:\s+(?:это|вслух|текст|мне|с\s+экрана))*",
)
_DEICTIC = re.compile(r"\b(?:this|here|these|это|этот|эта|эти|здесь|тут)\b", re.IGNORECASE)
_NOT_ABOUT_SCREEN = re.compile(
    r"^(?:forget|remember|never\s+mind|stop|cancel|забудь|запомни|неважно|стоп|отмена|хватит)\b",
    re.IGNORECASE,
)

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
# Punctuation becomes a space (a '.' only where it ends a word), keeping character offsets.
_PUNCT = re.compile(r"[?!,;:\"«»“”„()\[\]…]|\.(?=\s|$)|(?<!\w)['-]|['-](?!\w)")
_MAX_APP_WORDS, _MAX_APP_CHARS, _MAX_DEICTIC_WORDS, _RECALL_LIMIT = 4, 40, 6, 10

_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = "January February March April May June July August September October November December"
_RU_DAYS = ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье")
_RU_MONTHS = "января февраля марта апреля мая июня июля августа сентября октября ноября декабря"
_SELF_TO_YOU = {"i am": "you are", "i was": "you were", "i'm": "you're", "i've": "you've"}
_SELF_TO_YOU |= {"i'll": "you'll", "i'd": "you'd", "i": "you", "me": "you", "my": "your"}
_SELF_TO_YOU |= {"mine": "yours", "myself": "yourself"}
_SELF = re.compile(r"\b(?:i\s+am|i\s+was|i'm|i've|i'll|i'd|i|me|my|mine|myself)\b", re.IGNORECASE)

_TEXTS = {
    "open": ("Opening {app}.", "Открываю {app}."),
    "close": ("Closing {app}.", "Закрываю {app}."),
    "time": ("It's {time}.", "Сейчас {time}."),
    "date": ("Today is {date}.", "Сегодня {date}."),
    "greet": ("{hello}! How can I help?", "{hello}! Чем могу помочь?"),
    "remembered": ("Okay, I'll remember that.", "Хорошо, запомню."),
    "secret": ("I won't store passwords or other secrets.", "Я не храню пароли и другие секреты."),
    "recall": ("Here's what I remember: {facts}.", "Вот что вы просили запомнить: {facts}."),
    "recall_none": ("I don't remember anything about you yet.", "Я пока ничего о вас не помню."),
    "wiped": ("Done. I've forgotten everything.", "Готово, память очищена."),
    "wiped_none": ("There was nothing to forget.", "Мне нечего забывать."),
    "forgot_one": ("Okay, I've forgotten that.", "Хорошо, это забыто."),
    "forgot_many": ("Okay, I've forgotten {n} things.", "Хорошо, забыто записей: {n}."),
    "forgot_none": ("I don't remember anything like that.", "Я такого не помню."),
    "screen": (
        "I can't see your screen with the built-in model. "
        "A cloud model with vision can describe it.",
        "Встроенная модель не видит ваш экран. "
        "Описать его может облачная модель с поддержкой изображений.",
    ),
}
_DEICTIC_FACTS = frozenset({"it", "this", "that", "them", "about it", "это", "этом", "то"})
