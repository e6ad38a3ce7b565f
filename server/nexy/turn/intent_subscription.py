"""Buying and managing the Nexy subscription, in English and Russian.

Only requests about the user's own subscription match: "cancel my Netflix subscription" or
"why is my subscription so expensive?" go to the model.
"""

from __future__ import annotations

import re

from nexy.turn.intent_base import IntentReply, Said

_I = re.IGNORECASE
_PLAN = (
    r"(?:nexy\s+)?(?:subscription|premium|pro|(?:premium|pro|paid)\s+(?:plan|subscription|version))"
)
_BUY = re.compile(
    "|".join(
        (
            rf"(?:buy|purchase|get|start|activate)\s+(?:a\s+|the\s+)?{_PLAN}",
            r"(?:upgrade|go)\s+(?:to\s+)?(?:the\s+)?(?:premium|pro|paid)(?:\s+(?:plan|version))?",
            r"subscribe(?:\s+(?:me|us))?(?:\s+to\s+(?:nexy(?:\s+(?:premium|pro))?|premium|pro"
            r"|(?:the\s+)?(?:premium|pro|paid)\s+(?:plan|version)))?",
            r"i(?:\s+want|\s+would\s+like|'d\s+like)\s+to\s+(?:subscribe|buy\s+a\s+subscription|upgrade)",
            r"(?:купи(?:ть|те)?|оформи(?:ть|те)?|приобрести|подключи(?:ть|те)?)\s+(?:мне\s+)?"
            r"(?:подписку|премиум|про\s+версию|платную\s+версию)(?:\s+некси)?",
            r"(?:хочу|хотим|хотел\s+бы|хотела\s+бы)\s+(?:купить|оформить)\s+подписку",
            r"(?:перейти|перейди(?:те)?)\s+на\s+(?:премиум|про|платный\s+тариф)",
            r"подписаться|подпиши\s+меня",
        )
    ),
    _I,
)
_MANAGE = re.compile(
    "|".join(
        (
            r"(?:manage|change|cancel|view|show(?:\s+me)?|check|open)\s+(?:my\s+|the\s+)?"
            r"(?:nexy\s+)?(?:subscription|plan|billing)(?:\s+settings)?",
            r"(?:subscription|billing)\s+settings|unsubscribe|downgrade(?:\s+my\s+plan)?",
            r"управлени[ея]\s+подпиской|(?:управлять|управляй(?:те)?)\s+подпиской",
            r"(?:отмени(?:ть|те)?|отключи(?:ть|те)?|измени(?:ть|те)?|покажи(?:те)?|показать"
            r"|открой(?:те)?|открыть)\s+(?:мою\s+)?подписку",
            r"(?:(?:открой(?:те)?|открыть|покажи(?:те)?|показать)\s+(?:мне\s+)?)?"
            r"(?:настройки\s+(?:моей\s+)?подписки|управление\s+(?:моей\s+)?подпиской)",
            r"моя\s+подписка|мой\s+тариф|отписаться",
        )
    ),
    _I,
)
_TEXTS = {
    "buy": ("Opening the subscription options.", "Открываю оформление подписки."),
    "manage": ("Opening your subscription settings.", "Открываю управление подпиской."),
}


def match_subscription(said: Said, start: int, end: int) -> IntentReply | None:
    """A request to buy or manage the subscription, or None."""
    if _BUY.fullmatch(said.key, start, end):
        return IntentReply(_TEXTS["buy"][said.ru], "buy_subscription", {})
    if _MANAGE.fullmatch(said.key, start, end):
        return IntentReply(_TEXTS["manage"][said.ru], "manage_subscription", {})
    return None
