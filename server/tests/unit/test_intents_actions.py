"""Local intents for the client's whole action vocabulary: messages, contacts, the browser, the
subscription and app names, in English and Russian — and every reply passes the real allow-list."""

from __future__ import annotations

import json

import pytest

from nexy.config import ActionSettings
from nexy.memory.hooks import InProcessMemory
from nexy.providers.llm.intent import reply_json
from nexy.turn.actions import ActionPolicy
from nexy.turn.intent_phrases import _CYRILLIC
from nexy.turn.intents import IntentMatcher, IntentReply

Args = dict[str, str | int]


async def ask(prompt: str) -> IntentReply | None:
    return await IntentMatcher(InProcessMemory()).match(prompt, "device-1", False, False)


SEND: list[tuple[str, Args, str]] = [
    ("send a message to Mom saying I'll be late", {"contact": "Mom", "message": "I'll be late"}, "Sending your message to Mom."),
    ("Send a message to 555-1234 saying Hello World", {"contact": "5551234", "message": "Hello World"}, "Sending your message to 555-1234."),
    ("text John: on my way", {"contact": "John", "message": "on my way"}, "Sending your message to John."),
    ("message 555-1234 hello world", {"contact": "5551234", "message": "hello world"}, "Sending your message to 555-1234."),
    ("tell Anna that dinner is ready.", {"contact": "Anna", "message": "dinner is ready"}, "Sending your message to Anna."),
    ("Can you text my wife that I'm on my way?", {"contact": "wife", "message": "I'm on my way"}, "Sending your message to wife."),
    ("please send Bob a message saying see you at 3:30", {"contact": "Bob", "message": "see you at 3:30"}, "Sending your message to Bob."),
    ("text +1 (555) 123-4567: save a seat for me", {"contact": "+15551234567", "message": "save a seat for me"}, "Sending your message to +1 (555) 123-4567."),
    ('send a text to Alex saying "Happy birthday!", please', {"contact": "Alex", "message": "Happy birthday"}, "Sending your message to Alex."),
    ("напиши маме что я опоздаю", {"contact": "маме", "message": "я опоздаю"}, "Отправляю сообщение маме."),
    ("отправь сообщение Ивану: буду через час", {"contact": "Ивану", "message": "буду через час"}, "Отправляю сообщение Ивану."),
    ("скажи Анне, что ужин готов.", {"contact": "Анне", "message": "ужин готов"}, "Отправляю сообщение Анне."),
    ("Пожалуйста, напиши Пете сообщение: Привет, как дела?", {"contact": "Пете", "message": "Привет, как дела"}, "Отправляю сообщение Пете."),
    ("можешь отправить смс на номер +7 999 123-45-67 перезвони мне", {"contact": "+79991234567", "message": "перезвони мне"}, "Отправляю сообщение на номер +7 999 123-45-67."),
    ("передай брату, что встреча перенесена", {"contact": "брату", "message": "встреча перенесена"}, "Отправляю сообщение брату."),
    ("tell Mike I'll call him back", {"contact": "Mike", "message": "I'll call him back"}, "Sending your message to Mike."),
    ("Tell Anna, dinner is ready.", {"contact": "Anna", "message": "dinner is ready"}, "Sending your message to Anna."),
    ("text Sarah the meeting moved to 5", {"contact": "Sarah", "message": "the meeting moved to 5"}, "Sending your message to Sarah."),
    ("tell mom I'm running late, please", {"contact": "mom", "message": "I'm running late"}, "Sending your message to mom."),
    ("напиши Оле, пожалуйста, что я уже выхожу", {"contact": "Оле", "message": "я уже выхожу"}, "Отправляю сообщение Оле."),
]  # fmt: skip

READ: list[tuple[str, Args, str]] = [
    ("read my messages", {}, "Reading your messages."),
    ("read messages from Anna", {"contact": "Anna"}, "Reading your messages from Anna."),
    ("read the last 3 messages from John", {"contact": "John", "limit": 3}, "Reading your messages from John."),
    ("Any new messages?", {}, "Reading your messages."),
    ("can you check my texts, please", {}, "Reading your messages."),
    ("read me the last five messages", {"limit": 5}, "Reading your messages."),
    ("read my last message", {"limit": 1}, "Reading your messages."),
    ("read the last 200 messages", {"limit": 50}, "Reading your messages."),
    ("прочитай сообщения", {}, "Читаю ваши сообщения."),
    ("прочитай мои сообщения", {}, "Читаю ваши сообщения."),
    ("прочитай последние 5 сообщений от мамы", {"contact": "мамы", "limit": 5}, "Читаю сообщения от мамы."),
    ("Можешь прочитать последние три сообщения?", {"limit": 3}, "Читаю ваши сообщения."),
    ("у меня есть новые сообщения?", {}, "Читаю ваши сообщения."),
    ("прочитай последнее сообщение от Ивана", {"contact": "Ивана", "limit": 1}, "Читаю сообщения от Ивана."),
]  # fmt: skip

FIND: list[tuple[str, Args, str]] = [
    ("find John's number", {"query": "John"}, "Looking up John in your contacts."),
    ("find contact Anna Smith", {"query": "Anna Smith"}, "Looking up Anna Smith in your contacts."),
    ("look up Bob in my contacts", {"query": "Bob"}, "Looking up Bob in your contacts."),
    ("what's Mary's phone number?", {"query": "Mary"}, "Looking up Mary in your contacts."),
    ("please find the phone number for Dr. Lee", {"query": "Dr. Lee"}, "Looking up Dr. Lee in your contacts."),
    ("search my contacts for 555-0199", {"query": "5550199"}, "Looking up 555-0199 in your contacts."),
    ("найди контакт Иван", {"query": "Иван"}, "Ищу контакт: Иван."),
    ("найди номер мамы", {"query": "мамы"}, "Ищу контакт: мамы."),
    ("найди в контактах Олега", {"query": "Олега"}, "Ищу контакт: Олега."),
    ("какой номер телефона у Саши?", {"query": "Саши"}, "Ищу контакт: Саши."),
]  # fmt: skip

BROWSER: list[tuple[str, Args, str]] = [
    ("Go to google.com and search for OpenAI", {"task": "search for OpenAI", "url": "https://google.com"}, "Opening google.com."),
    ("open youtube.com", {"task": "open youtube.com", "url": "https://youtube.com"}, "Opening youtube.com."),
    ("please visit https://News.ycombinator.com/news", {"task": "visit https://News.ycombinator.com/news", "url": "https://news.ycombinator.com/news"}, "Opening News.ycombinator.com/news."),
    ("search the web for weather in Paris", {"task": "search the web for weather in Paris"}, "Searching the web for weather in Paris."),
    ("google best pizza near me", {"task": "search the web for best pizza near me"}, "Searching the web for best pizza near me."),
    ("look up flights to Rome online", {"task": "search the web for flights to Rome"}, "Searching the web for flights to Rome."),
    ("open the Wikipedia website", {"task": "open the Wikipedia website"}, "Opening it in the browser."),
    ("найди в интернете погоду в Москве", {"task": "найди в интернете погоду в Москве"}, "Ищу в интернете: погоду в Москве."),
    ("открой сайт youtube.com", {"task": "открой сайт youtube.com", "url": "https://youtube.com"}, "Открываю youtube.com."),
    ("зайди на habr.com и найди статьи про Rust", {"task": "найди статьи про Rust", "url": "https://habr.com"}, "Открываю habr.com."),
    ("загугли рецепт борща", {"task": "найди в интернете рецепт борща"}, "Ищу в интернете: рецепт борща."),
    ("открой сайт госуслуг", {"task": "открой сайт госуслуг"}, "Открываю в браузере."),
]  # fmt: skip

FIXED: list[tuple[str, str, str]] = [
    ("close the browser", "close_browser", "Closing the browser."),
    ("please quit my web browser", "close_browser", "Closing the browser."),
    ("закрой браузер", "close_browser", "Закрываю браузер."),
    ("выйди из браузера, пожалуйста", "close_browser", "Закрываю браузер."),
    ("buy a subscription", "buy_subscription", "Opening the subscription options."),
    ("upgrade to premium", "buy_subscription", "Opening the subscription options."),
    ("I'd like to subscribe", "buy_subscription", "Opening the subscription options."),
    ("купить подписку", "buy_subscription", "Открываю оформление подписки."),
    ("можешь оформить мне подписку?", "buy_subscription", "Открываю оформление подписки."),
    ("manage my subscription", "manage_subscription", "Opening your subscription settings."),
    ("cancel my subscription", "manage_subscription", "Opening your subscription settings."),
    ("open subscription settings", "manage_subscription", "Opening your subscription settings."),
    ("управление подпиской", "manage_subscription", "Открываю управление подпиской."),
    ("отменить подписку", "manage_subscription", "Открываю управление подпиской."),
    ("пожалуйста, отмени мою подписку", "manage_subscription", "Открываю управление подпиской."),
    ("закрой, пожалуйста, браузер", "close_browser", "Закрываю браузер."),
    ("close all browser windows", "close_browser", "Closing the browser."),
    ("close, please, the browser", "close_browser", "Closing the browser."),
    ("закрой все окна браузера", "close_browser", "Закрываю браузер."),
    ("открой настройки подписки", "manage_subscription", "Открываю управление подпиской."),
    ("открой управление подпиской", "manage_subscription", "Открываю управление подпиской."),
    ("open my subscription settings", "manage_subscription", "Opening your subscription settings."),
    ("subscribe me to premium", "buy_subscription", "Opening the subscription options."),
    ("get premium", "buy_subscription", "Opening the subscription options."),
    ("оформи подписку", "buy_subscription", "Открываю оформление подписки."),
]

APPS: list[tuple[str, str, str, str]] = [
    ("открой сафари", "open_app", "Safari", "Открываю Safari."),
    ("запусти телеграм", "open_app", "Telegram", "Открываю Telegram."),
    ("открой хром", "open_app", "Google Chrome", "Открываю Google Chrome."),
    ("открой заметки", "open_app", "Notes", "Открываю Notes."),
    ("открой приложение калькулятор", "open_app", "Calculator", "Открываю Calculator."),
    ("открой почту", "open_app", "Mail", "Открываю Mail."),
    ("включи... то есть открой музыку", None, "", ""),
    ("открой календарь", "open_app", "Calendar", "Открываю Calendar."),
    ("запусти спотифай", "open_app", "Spotify", "Открываю Spotify."),
    ("открой терминал", "open_app", "Terminal", "Открываю Terminal."),
    ("закрой финдер", "close_app", "Finder", "Закрываю Finder."),
    ("открой системные настройки", "open_app", "System Settings", "Открываю System Settings."),
    ("открой настройки", "open_app", "System Settings", "Открываю System Settings."),
    ("закрой ватсап", "close_app", "WhatsApp", "Закрываю WhatsApp."),
    ("запусти скайп", "open_app", "Skype", "Открываю Skype."),
    ("открой дискорд", "open_app", "Discord", "Открываю Discord."),
    ("открой зум", "open_app", "zoom.us", "Открываю Zoom."),
    ("open safari", "open_app", "Safari", "Opening Safari."),
    ("please close google chrome", "close_app", "Google Chrome", "Closing Google Chrome."),
    ("open vs code", "open_app", "Visual Studio Code", "Opening Visual Studio Code."),
    ("launch vscode", "open_app", "Visual Studio Code", "Opening Visual Studio Code."),
    ("open zoom", "open_app", "zoom.us", "Opening Zoom."),
    ("open my cool tool", None, "", ""),
    ("open cool tool", "open_app", "Cool Tool", "Opening Cool Tool."),
    ("open iTerm", "open_app", "iTerm", "Opening iTerm."),
    ("открой фотошоп", "open_app", "Adobe Photoshop", "Открываю Adobe Photoshop."),
    ("открой, пожалуйста, терминал", "open_app", "Terminal", "Открываю Terminal."),
    ("open, please, Safari", "open_app", "Safari", "Opening Safari."),
    ("Закрой, пожалуйста, Telegram.", "close_app", "Telegram", "Закрываю Telegram."),
    ("close all windows", None, "", ""),
    ("закрой, пожалуйста, дверь", None, "", ""),
]

NOT_ACTIONS = [
    # messages
    "how do I send a message in Python?",
    "send a message",
    "tell me that you love me",
    "tell me a joke",
    "text messages are expensive",
    "скажи мне, что такое любовь",
    "напиши код, что считает простые числа",
    "как отправить сообщение в телеграме?",
    "what is a message queue?",
    "write a text to explain that gravity is a force",
    "read the messages in this Kafka topic",
    "прочитай сообщение об ошибке и объясни",
    "tell me about Mike Tyson",
    "Tell Me About Mike Tyson",
    "Tell Mike Tyson I said hi",
    "tell Siri to set a timer",
    "tell dad jokes to my kids",
    "tell John's wife I'm here",
    "tell Mike thanks",
    "tell a story about dragons",
    # contacts
    "find the number of primes below 100",
    "how do I find a contact on iPhone?",
    "найди номер телефона",
    "find the contact form on this page",
    # browser
    "what is a browser?",
    "which browser is the fastest?",
    "open the site",
    "how do I search the web for images?",
    "search for the meaning of life",
    "open this website",
    "что такое браузер",
    "google chrome",
    "google it",
    "open the browser",
    "открой браузер",
    # subscription
    "why is my subscription so expensive?",
    "cancel my Netflix subscription",
    "what does premium include?",
    "подпишись на канал",
    "купить молоко",
    "почему подписка такая дорогая?",
    "what does premium mean?",
    "open questions about subscriptions are hard",
    "subscribe me to the newsletter",
    "настройки подписки на YouTube не работают",
]

CASES: list[tuple[str, str, Args, str]] = (
    [(p, "send_message", a, t) for p, a, t in SEND]
    + [(p, "read_messages", a, t) for p, a, t in READ]
    + [(p, "find_contact", a, t) for p, a, t in FIND]
    + [(p, "browser_use", a, t) for p, a, t in BROWSER]
    + [(p, c, {}, t) for p, c, t in FIXED]
    + [(p, c, {"app_name": a}, t) for p, c, a, t in APPS if c is not None]
)


def russian(text: str) -> bool:
    return _CYRILLIC.search(text) is not None


@pytest.mark.parametrize(("prompt", "command", "args", "text"), CASES)
async def test_action_intents(prompt: str, command: str, args: Args, text: str) -> None:
    reply = await ask(prompt)
    assert reply == IntentReply(text, command, args)
    assert russian(reply.text) == russian(prompt)  # the reply speaks the user's language


@pytest.mark.parametrize(("prompt", "command", "args", "text"), CASES)
async def test_action_intents_pass_the_allow_list(
    prompt: str, command: str, args: Args, text: str
) -> None:
    reply = await ask(prompt)
    assert reply is not None
    payload = json.loads(reply_json(reply))  # the object the turn pipeline extracts
    action = ActionPolicy(ActionSettings()).validate(payload["command"], payload.get("args", {}))
    assert action is not None, f"{reply.command} {reply.args} fails the schema"
    assert (action.command, dict(action.args)) == (reply.command, reply.args)  # nothing dropped


@pytest.mark.parametrize("prompt", NOT_ACTIONS + [p for p, c, _, _ in APPS if c is None])
async def test_not_an_action(prompt: str) -> None:
    assert await ask(prompt) is None


FAMILY = {"close_browser": "browser_use", "close_app": "open_app"}
FAMILY |= {"buy_subscription": "subscription", "manage_subscription": "subscription"}


def test_every_family_has_eight_phrasings_in_both_languages() -> None:
    by_family: dict[str, list[str]] = {}
    for prompt, command, _, _ in CASES:
        by_family.setdefault(FAMILY.get(command, command), []).append(prompt)
    assert len(by_family) == 6
    for family, prompts in by_family.items():
        assert len(prompts) >= 8, family
        assert any(map(russian, prompts)) and not all(map(russian, prompts)), family
