"""``test_full_pipeline_e2e.py`` and ``test_full_chain_client.py``: a turn as the client sees it.

Against an arbitrary server the client cannot choose the model's reply, so the chain checks use
prompts the server's local intent path answers deterministically: "Hello" (plain text) and
"Open Safari" (an ``open_app`` action). A server with ``llm.intents.enabled: false`` sends them to
its model instead, and the action check then fails with that explanation.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from nexy.toolkit.calls import (
    QUICK_PROMPT,
    TurnResult,
    audio_problems,
    collect,
    commit,
    finish_call,
    first_message,
    order_problems,
    read_rest,
    run_turn,
    slow_prompt,
    stub_for,
)
from nexy.toolkit.connection import Target, new_device, new_session
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, skipped, verdict

PIPELINE_PROMPT = "Tell me one interesting fact about the ocean."
ACTION_PROMPT = "Open Safari"
_JSON_LEFTOVERS = ("{", "}", '"text"', '"command"', "```")


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f} " + say("ms", "мс")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pipeline_checks(result: TurnResult) -> list[Check]:
    """Format, order and timing verdicts for one spoken turn."""
    audio = result.audio
    problems = sorted({p for chunk in audio for p in audio_problems(chunk)})
    samples = sum(len(chunk.audio_data) // 2 for chunk in audio)
    biggest = max((len(chunk.audio_data) for chunk in audio), default=0)
    format_ok = bool(audio) and not problems
    order = order_problems(result)
    leftovers = [m for m in _JSON_LEFTOVERS if m in result.text]
    return [
        verdict(
            "pipeline.turn",
            result.ended,
            say(
                f"Request → LLM → TTS → client: {len(result.responses)} responses, "
                f"text '{_short(result.text)}'",
                f"Запрос → LLM → TTS → клиент: {len(result.responses)} ответов, "
                f"текст «{_short(result.text)}»",
            ),
            say(
                f"The turn did not end with end_message: {result.status()}; "
                f"stream: {result.shape()}",
                f"Ход не завершился end_message: {result.status()}; поток: {result.shape()}",
            ),
        ),
        verdict(
            "pipeline.audio_format",
            format_ok,
            say(
                "Audio format: 48000 Hz, mono, int16, even lengths, shape = samples; "
                f"{len(audio)} chunks, {samples / 48000:.2f} s, up to {biggest} bytes a chunk",
                "Формат аудио: 48000 Гц, моно, int16, чётные длины, shape = сэмплы; "
                f"{len(audio)} чанков, {samples / 48000:.2f} с, до {biggest} байт в чанке",
            ),
            say("Audio format: ", "Формат аудио: ")
            + ("; ".join(problems) or say("no audio", "аудио нет")),
        ),
        verdict(
            "pipeline.order",
            not order,
            say(f"Stream order: {result.shape()}", f"Порядок потока: {result.shape()}"),
            say(
                f"Stream order broken: {'; '.join(order)}; stream: {result.shape()}",
                f"Порядок потока нарушен: {'; '.join(order)}; поток: {result.shape()}",
            ),
        ),
        verdict(
            "pipeline.text",
            bool(result.text.strip()) and not leftovers,
            say(
                "Reply text is clean speech (no JSON markup)",
                "Текст ответа — чистая речь (без JSON-разметки)",
            ),
            say(
                f"Reply text is empty or has markup {leftovers}: '{_short(result.text)}'",
                f"Текст ответа пуст или содержит разметку {leftovers}: «{_short(result.text)}»",
            ),
        ),
        verdict(
            "pipeline.timing",
            result.first_audio_s is not None,
            say(
                f"Latency: first text {_ms(result.first_text_s)}, first audio "
                f"{_ms(result.first_audio_s)}, whole reply {_ms(result.total_s)}",
                f"Задержки: первый текст {_ms(result.first_text_s)}, первое аудио "
                f"{_ms(result.first_audio_s)}, весь ответ {_ms(result.total_s)}",
            ),
            say(
                f"Latency: the first audio never came (total {_ms(result.total_s)})",
                f"Задержки: первое аудио так и не пришло (всего {_ms(result.total_s)})",
            ),
        ),
    ]


async def _collect_then_commit(stub: Any, deadline: float) -> Check:
    """The desktop client's real flow: interim transcripts, then a COMMIT with no prompt."""
    device, session = new_device(), new_session()
    words = PIPELINE_PROMPT.split()
    halves = (" ".join(words[: len(words) // 2]), PIPELINE_PROMPT)
    for seq, text in enumerate(halves, start=1):
        request = collect(text, seq, hardware_id=device, session_id=session)
        result = await run_turn(stub, request, min(deadline, 3.0))  # the client's 3 s budget
        if [r.end_message for r in result.responses] != ["COLLECT_ACCEPTED"]:
            return failed(
                "pipeline.collect_commit",
                say(
                    f"COLLECT {seq}: expected one end_message COLLECT_ACCEPTED, got "
                    f"{result.shape()} ({result.status()})",
                    f"COLLECT {seq}: ожидался один end_message COLLECT_ACCEPTED, получено "
                    f"{result.shape()} ({result.status()})",
                ),
            )
    result = await run_turn(stub, commit("", hardware_id=device, session_id=session), deadline)
    return verdict(
        "pipeline.collect_commit",
        result.ended and bool(result.text),
        say(
            "COLLECT ×2 → COMMIT without prompt: answered the collected text",
            "COLLECT ×2 → COMMIT без prompt: ответ по накопленному тексту получен",
        ),
        say(
            f"COMMIT after COLLECT: {result.status()}; stream: {result.shape()}",
            f"COMMIT после COLLECT: {result.status()}; поток: {result.shape()}",
        ),
    )


async def run_pipeline(grpc_target: Target, report: Report) -> Report:
    """Request → LLM → TTS → client: formats, order and latency of one real turn."""
    channel = grpc_target.channel()
    stub = stub_for(channel)
    try:
        report.step(
            say(
                f"Testing the full pipeline: '{PIPELINE_PROMPT}'",
                f"Тестирование полного пайплайна: «{PIPELINE_PROMPT}»",
            )
        )
        result = await run_turn(stub, commit(PIPELINE_PROMPT), grpc_target.timeout)
        report.note(say(f"Stream: {result.shape()}", f"Поток: {result.shape()}"))
        report.add(*pipeline_checks(result))
        report.step(say("Testing COLLECT → COMMIT", "Тестирование COLLECT → COMMIT"))
        await report.run("pipeline.collect_commit", _collect_then_commit(stub, grpc_target.timeout))
    finally:
        await channel.close()
    return report


def _payload(result: TurnResult) -> dict[str, Any] | None:
    if len(result.actions) != 1:
        return None
    try:
        data = json.loads(result.actions[0].action_json)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def _plain_text(stub: Any, deadline: float) -> Check:
    result = await run_turn(stub, commit(QUICK_PROMPT), deadline)
    ok = result.ended and bool(result.text.strip()) and not result.actions
    ok = ok and not any(m in result.text for m in _JSON_LEFTOVERS)
    return verdict(
        "chain.plain_text",
        ok,
        say(
            f"Plain text → client: '{_short(result.text)}' (no action)",
            f"Обычный текст → клиент: «{_short(result.text)}» (без действия)",
        ),
        say(
            f"Plain text: {result.status()}; stream: {result.shape()}; '{_short(result.text)}'",
            f"Обычный текст: {result.status()}; поток: {result.shape()}; «{_short(result.text)}»",
        ),
    )


async def _json_action(stub: Any, deadline: float) -> list[Check]:
    session = new_session()
    result = await run_turn(stub, commit(ACTION_PROMPT, session_id=session), deadline)
    data = _payload(result)
    args = data.get("args") if data else None
    app = args.get("app_name") if isinstance(args, dict) else None
    ok = result.ended and data is not None and data.get("command") == "open_app"
    ok = ok and isinstance(app, str) and app.lower() == "safari"
    spoken_clean = not any(m in result.text for m in _JSON_LEFTOVERS)
    action = verdict(
        "chain.json_action",
        ok and spoken_clean,
        say(
            f"JSON command → client: {data and data.get('command')} {args}, "
            f"spoken '{_short(result.text)}'",
            f"JSON команда → клиент: {data and data.get('command')} {args}, "
            f"произнесено «{_short(result.text)}»",
        ),
        say(
            "JSON command: expected one open_app {app_name: Safari}, got "
            f"{[a.action_json for a in result.actions]}; stream: {result.shape()} "
            "(are the server's local intents off?)",
            "JSON команда: ожидался один open_app {app_name: Safari}, получено "
            f"{[a.action_json for a in result.actions]}; поток: {result.shape()} "
            "(локальные интенты сервера выключены?)",
        ),
    )
    if data is None:
        return [
            action,
            failed(
                "chain.action_session",
                say("Action session_id: there is no action", "session_id действия: действия нет"),
            ),
        ]
    same = data.get("session_id") == session and result.actions[0].session_id == session
    return [
        action,
        verdict(
            "chain.action_session",
            same,
            say(
                "gRPC format: action_json and ActionMessage.session_id = the request's session_id",
                "Формат для gRPC: action_json и ActionMessage.session_id = session_id запроса",
            ),
            say(
                f"Action session_id {data.get('session_id')!r}/{result.actions[0].session_id!r} "
                f"≠ request's {session!r}",
                f"session_id действия {data.get('session_id')!r}/{result.actions[0].session_id!r} "
                f"≠ запроса {session!r}",
            ),
        ),
    ]


async def _session_handling(stub: Any, deadline: float) -> list[Check]:
    """A reused session_id while it runs → ALREADY_EXISTS; a new one works; the first survives."""
    device, session = new_device(), new_session()
    first = stub.StreamAudio(
        commit(slow_prompt(600), hardware_id=device, session_id=session), timeout=deadline
    )
    try:
        if await first_message(first, deadline) is None:
            code, details = await finish_call(first)
            detail = say(
                f"Repeated session_id: the first turn never started: {code.name} {details}",
                f"Повтор session_id: первый ход не начался: {code.name} {details}",
            )
            return [failed("chain.duplicate_session", detail)]
        again = commit(QUICK_PROMPT, hardware_id=device, session_id=session)
        duplicate = await run_turn(stub, again, deadline)
        fresh = await run_turn(stub, commit(QUICK_PROMPT, hardware_id=device), deadline)
        rest = await read_rest(first)
        code = await first.code()
    except BaseException:
        await finish_call(first)
        raise
    first_ended = code == grpc.StatusCode.OK and bool(rest) and rest[-1].HasField("end_message")
    checks: list[Check] = []
    if duplicate.code == grpc.StatusCode.OK:
        detail = say(
            "Repeated session_id: the first turn had already ended — the server was too fast",
            "Повтор session_id: первый ход уже закончился — сервер ответил слишком быстро",
        )
        checks.append(skipped("chain.duplicate_session", detail))
    else:
        checks.append(
            verdict(
                "chain.duplicate_session",
                duplicate.code == grpc.StatusCode.ALREADY_EXISTS,
                say(
                    "Repeated session_id during a turn → ALREADY_EXISTS",
                    "Повтор session_id во время хода → ALREADY_EXISTS",
                ),
                say(
                    f"Repeated session_id during a turn: {duplicate.status()} instead of "
                    "ALREADY_EXISTS",
                    f"Повтор session_id во время хода: {duplicate.status()} вместо ALREADY_EXISTS",
                ),
            )
        )
    checks.append(
        verdict(
            "chain.new_session",
            fresh.ended,
            say(
                "A new session_id of the same device is served",
                "Новый session_id того же устройства обслуживается",
            ),
            say(
                f"New session_id: {fresh.status()}; stream: {fresh.shape()}",
                f"Новый session_id: {fresh.status()}; поток: {fresh.shape()}",
            ),
        )
    )
    checks.append(
        verdict(
            "chain.first_undisturbed",
            first_ended,
            say(
                "The first turn was undisturbed and ended with end_message",
                "Первый ход не пострадал и завершился end_message",
            ),
            say(
                f"The first turn after the repeated session_id: {code.name}",
                f"Первый ход после повтора session_id: {code.name}",
            ),
        )
    )
    return checks


async def run_chain(grpc_target: Target, report: Report) -> Report:
    """Plain text and a JSON action reach the client correctly; session_id handling."""
    channel = grpc_target.channel()
    stub = stub_for(channel)
    deadline = grpc_target.timeout
    try:
        report.step(
            say(
                f"Testing plain text: '{QUICK_PROMPT}'",
                f"Тестирование обычного текста: «{QUICK_PROMPT}»",
            )
        )
        await report.run("chain.plain_text", _plain_text(stub, deadline))
        report.step(
            say(
                f"Testing a JSON command: '{ACTION_PROMPT}'",
                f"Тестирование JSON-команды: «{ACTION_PROMPT}»",
            )
        )
        await report.run("chain.json_action", _json_action(stub, deadline))
        report.step(say("Testing session_id handling", "Тестирование обработки session_id"))
        await report.run("chain.session", _session_handling(stub, deadline))
    finally:
        await channel.close()
    return report
