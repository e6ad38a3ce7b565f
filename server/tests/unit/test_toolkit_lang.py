"""The toolkit speaks the reader's language, and a bare Python gets a hint instead of a traceback.

The scripts run as real subprocesses, as a user types them: the locale comes from LC_ALL,
LC_MESSAGES and LANG, the exit codes must not depend on it, and a Python without the project's
dependencies must exit 2 with one line on stderr.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nexy.toolkit.connection import closed_port
from nexy.toolkit.lang import is_russian, say

SERVER = Path(__file__).resolve().parents[2]
SCRIPTS = SERVER / "scripts"
CYRILLIC = re.compile("[\u0400-\u04ff]")
# Russian that is data, not output: prompts the probes send and patterns they match.
RUSSIAN_DATA = {
    "nexy/toolkit/fuzz_families.py": {"Привет, как дела?"},
    "nexy/toolkit/actions.py": {"Сафари"},
    "nexy/toolkit/eval_embedded.py": {"пользователь", "ассистент", "а-яё", "Пользователь"},
}


@pytest.mark.parametrize(
    ("environ", "russian"),
    [
        ({}, False),
        ({"LANG": "C"}, False),
        ({"LANG": "en_US.UTF-8"}, False),
        ({"LANG": "ru_RU.UTF-8"}, True),
        ({"LANG": "ru"}, True),
        ({"LC_ALL": "", "LC_MESSAGES": "", "LANG": "ru_RU.UTF-8"}, True),  # empty means unset
        ({"LC_MESSAGES": "ru_RU.UTF-8", "LANG": "en_US.UTF-8"}, True),
        ({"LC_ALL": "C", "LC_MESSAGES": "ru_RU.UTF-8"}, False),  # LC_ALL overrides all
        ({"LC_ALL": "ru_RU.UTF-8", "LANG": "C"}, True),
        ({"LANG": "uk_UA.UTF-8"}, False),  # only Russian has a translation
    ],
)
def test_locale_decides_the_language(environ: dict[str, str], russian: bool) -> None:
    assert is_russian(environ) is russian


def test_say_follows_the_environment_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "ru_RU.UTF-8")
    assert say("yes", "да") == "да"
    monkeypatch.setenv("LANG", "C")
    assert say("yes", "да") == "yes"


def _run(
    argv: list[str], lang: str | None, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE", "PYTHONPATH")
    }
    if lang is not None:
        env["LANG"] = lang
    env["PYTHONIOENCODING"] = "utf-8"  # LANG=C must not break printing ✅ on old Pythons
    return subprocess.run(
        [python, *argv], capture_output=True, text=True, encoding="utf-8", env=env, timeout=120
    )


@pytest.mark.parametrize(
    ("lang", "expected", "absent"),
    [
        (None, "All MCP integration checks passed", "Тестирование"),
        ("C", "All MCP integration checks passed", "Тестирование"),
        ("en_US.UTF-8", "Testing command parsing", "Тестирование"),
        ("ru_RU.UTF-8", "Все проверки MCP-интеграции прошли успешно", "Testing"),
    ],
)
def test_offline_script_prints_in_the_locale_language(
    lang: str | None, expected: str, absent: str
) -> None:
    done = _run([str(SCRIPTS / "test_mcp_full_integration.py"), "--offline"], lang)
    assert done.returncode == 0, done.stdout + done.stderr
    assert expected in done.stdout and absent not in done.stdout


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("C", "Cannot connect to 127.0.0.1:"), ("ru_RU.UTF-8", "Не удалось подключиться к")],
)
def test_unreachable_server_exits_2_in_either_language(lang: str, expected: str) -> None:
    port = str(closed_port("127.0.0.1"))
    done = _run([str(SCRIPTS / "grpc_smoke.py"), "127.0.0.1", port, "--timeout", "3"], lang)
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stdout


def _bare_pythons() -> list[list[str]]:
    """``-S`` hides every site-packages (the venv's too); a system Python may lack them too."""
    pythons = [[sys.executable, "-S"]]
    system = Path("/usr/bin/python3")
    if system.exists():
        probe = subprocess.run([str(system), "-c", "import grpc"], capture_output=True)
        if probe.returncode != 0:
            pythons.append([str(system)])
    return pythons


@pytest.mark.parametrize("python", _bare_pythons(), ids=lambda argv: " ".join(argv))
@pytest.mark.parametrize("script", ["grpc_smoke.py", "bench_turn.py", "run_all_tests.py"])
def test_bare_python_gets_one_line_hint_and_exit_2(python: list[str], script: str) -> None:
    done = _run([*python[1:], str(SCRIPTS / script), "--help"], "C", python=python[0])
    assert done.returncode == 2
    assert done.stdout == ""
    assert re.fullmatch(
        r"run with \.venv/bin/python \(make test sets it up\): missing module \S+\n", done.stderr
    ), done.stderr
    russian = _run([*python[1:], str(SCRIPTS / script)], "ru_RU.UTF-8", python=python[0])
    assert russian.returncode == 2
    assert russian.stderr.startswith("запустите через .venv/bin/python"), russian.stderr


# say() and the bootstrap's stand-ins for it (it cannot import the toolkit).
SAY_NAMES = {"say", "_say", "_refuse"}


def _say_russian_arguments(tree: ast.AST) -> set[int]:
    """ids of the nodes passed as the Russian (second) argument of ``say``."""
    return {
        id(node.args[1])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in SAY_NAMES
        and len(node.args) == 2
    }


def test_every_russian_message_has_an_english_twin() -> None:
    """A Russian literal is either say()'s second argument (inside it) or known data."""
    untranslated = []
    for path in sorted([*SERVER.glob("nexy/toolkit/*.py"), *SCRIPTS.rglob("*.py")]):
        relative = path.relative_to(SERVER).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        russian_arguments = _say_russian_arguments(tree)
        inside_say = {
            id(inner)
            for node in ast.walk(tree)
            if id(node) in russian_arguments
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if not CYRILLIC.search(node.value) or id(node) in inside_say:
                continue
            data = RUSSIAN_DATA.get(relative, set())
            if not any(word in node.value for word in data) and not _is_docstring(tree, node):
                untranslated.append(f"{relative}:{node.lineno}: {node.value[:60]!r}")
    assert not untranslated, "\n".join(untranslated)


def _is_docstring(tree: ast.AST, node: ast.Constant) -> bool:
    return any(
        isinstance(owner, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and owner.body
        and isinstance(owner.body[0], ast.Expr)
        and owner.body[0].value is node
        for owner in ast.walk(tree)
    )
